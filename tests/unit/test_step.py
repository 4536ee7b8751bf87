"""The one step interface (pipeline/step.py) on hand-made data: identities, the chain's cache of every step, facts
declared by one step and read by a later one, and a new step registered through the builder's table."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pytest

from retrieval_lab import pipeline
from retrieval_lab.cache import Cache
from retrieval_lab.chunking import whole_documents
from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.fusion import FusionConfig
from retrieval_lab.pipeline.build import STEPS, StepEntry
from retrieval_lab.pipeline.chain import Chain
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query, run_from_entry, run_to_entry
from retrieval_lab.pipeline.steps import DocumentsStep, FirstStageStep, FusionStep, RerankStep
from retrieval_lab.rerank import RERANKERS, RerankerConfig
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.types import Corpus, Facts, Queries, Run
from tests.unit.test_fusion_pipeline import toy_dataset

CORPUS = Corpus([f"d{i}" for i in range(6)], [""] * 6,
                ["cats purr softly", "dogs bark loudly", "cats and dogs", "birds sing", "fish swim", "cats sleep"])
QUERIES = Queries(["q1", "q2"], ["cats", "dogs bark"])


class Searcher:
    """A first stage that ranks passages by shared words, counting its calls; it declares `facts`."""

    def __init__(self, calls: dict, facts: Facts = Facts(), weight: float = 1.0):
        self.calls, self.facts, self.weight = calls, facts, weight
        self.identity = {"name": "words", "weight": weight}

    def index(self, passages):
        self.calls["index"] = self.calls.get("index", 0) + 1
        self.texts = passages.texts

    def search(self, texts, k):
        self.calls["search"] = self.calls.get("search", 0) + 1
        scores = np.array([[self.weight * len(set(t.split()) & set(p.split())) for p in self.texts] for t in texts])
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.where(np.take_along_axis(scores, rows, 1) > 0, rows, -1), np.take_along_axis(scores, rows, 1)

    def stats(self):
        return {"index_size_bytes": 10.0, "spent_tokens": 5.0}


class Shift(Step):
    """A passage-level step that adds `amount` to every score, counting its runs; it reads the run before it and
    what the earlier steps declared."""

    label = "shift"

    def __init__(self, amount: float, reads: tuple[str, ...], calls: dict):
        self.amount, self.reads, self.calls = amount, reads, calls
        self.seen_facts: dict = {}

    @property
    def identity(self) -> dict:
        return {"name": "shift", "stage_version": self.stage_version, "amount": self.amount}

    def run(self, context: Context) -> StepResult:
        self.calls[self.label] = self.calls.get(self.label, 0) + 1
        self.seen_facts = {"max_tokens": context.fact("max_tokens"), "model": context.fact("model")}
        before = context.input().run
        run, latency = per_query(context.queries.ids, lambda qid: [(p, s + self.amount) for p, s in before[qid]])
        return StepResult(run, latency, {"shift_seconds": 0.5}, {"shift_spent_cost": 2.0})


def chain(tmp_path, calls, amount=1.0, second=0.0, weight=1.0, facts=Facts()) -> Chain:
    passages = whole_documents(CORPUS)
    first = FirstStageStep("words", Searcher(calls, facts, weight))
    one = Shift(amount, ("words",), calls)
    two = replace_label(Shift(second, ("shift",), calls), "shift2")
    return Chain(CORPUS, passages, [first, one, two, DocumentsStep("max", False, ("shift2",))], Cache(tmp_path))


def replace_label(step: Shift, label: str) -> Shift:
    step.label = label
    return step


def test_a_changed_later_setting_replays_the_earlier_steps_from_the_cache(tmp_path):
    calls: dict = {}
    first = chain(tmp_path, calls).run(QUERIES, 3)
    assert calls == {"index": 1, "search": 2, "shift": 1, "shift2": 1}  # 2 searches: the latency sample, alone
    assert first.costs["words_cache_hit"] == 0.0 and first.costs["shift_cache_hit"] == 0.0
    calls.clear()
    again = chain(tmp_path, calls, second=5.0).run(QUERIES, 3)  # the last step's setting: only it runs
    assert calls == {"shift2": 1}
    assert again.costs["words_cache_hit"] == 1.0 and again.costs["shift_cache_hit"] == 1.0
    assert again.runs["shift"] == first.runs["shift"] and again.runs["words"] == first.runs["words"]
    assert again.runs["shift2"]["q1"][0][1] == first.runs["shift2"]["q1"][0][1] + 5.0
    calls.clear()
    chain(tmp_path, calls, amount=2.0).run(QUERIES, 3)  # the middle step's setting: it and the one reading it run
    assert calls == {"shift": 1, "shift2": 1}
    calls.clear()
    chain(tmp_path, calls, weight=2.0).run(QUERIES, 3)  # the first stage's setting: everything runs
    assert calls == {"index": 1, "search": 2, "shift": 1, "shift2": 1}
    calls.clear()
    chain(tmp_path, calls).run(QUERIES, 4)  # another depth: another key for every step
    assert calls["shift"] == 1


def test_a_replay_equals_the_computed_result_and_spends_nothing(tmp_path):
    calls: dict = {}
    computed = chain(tmp_path, calls).run(QUERIES, 3)
    replayed = chain(tmp_path, calls).run(QUERIES, 3)
    assert computed.runs == replayed.runs
    for label in ("words", "shift", "shift2"):  # the cached steps (documents is recomputed: cheap)
        np.testing.assert_array_equal(computed.latency_ms[label], replayed.latency_ms[label])  # replayed, as stored
    assert computed.costs["shift_spent_cost"] == 2.0 and replayed.costs["shift_spent_cost"] == 0.0
    assert computed.costs["words_spent_tokens"] == 5.0 and replayed.costs["words_spent_tokens"] == 0.0
    assert replayed.costs["shift_seconds"] == 0.5 and replayed.costs["words_index_size_bytes"] == 10.0
    assert replayed.costs["index_seconds"] == computed.costs["index_seconds"]


def test_a_search_caches_nothing_and_a_disabled_cache_computes_every_time(tmp_path):
    calls: dict = {}
    built = chain(tmp_path, calls)
    built.run(QUERIES, 3, cache_runs=False)
    assert not (tmp_path / "step_runs").exists()
    built.cache = Cache(tmp_path, enabled=False)
    built.run(QUERIES, 3)
    built.run(QUERIES, 3)
    assert calls["shift"] == 3 and calls["index"] == 1  # the searcher indexes the same passages once

    class Unhashed(Searcher):  # a search needs no key: no model weights are hashed for it
        @property
        def identity(self):
            raise AssertionError("identity read by a search")

        @identity.setter
        def identity(self, value):
            pass

    passages = whole_documents(CORPUS)
    searched = Chain(CORPUS, passages, [FirstStageStep("words", Unhashed(calls)),
                                        DocumentsStep("max", False, ("words",))], Cache(tmp_path))
    assert searched.run(Queries(["q"], ["cats"]), 3, cache_runs=False).documents["q"][0][0] in {"d0", "d2", "d5"}


def test_identity_changes_with_each_setting_that_changes_the_output():
    fusion = FusionStep(FusionConfig(alpha=0.5), ("a", "b"))
    assert fusion.identity != FusionStep(FusionConfig(alpha=0.6), ("a", "b")).identity
    assert fusion.identity != FusionStep(FusionConfig(name="rrf"), ("a", "b")).identity

    class Scorer:
        identity = {"model": "m", "sha256": "abc"}

    rerank = RerankStep(RerankerConfig(name="cross_encoder", model="m", depth=20), Scorer(), ("fusion",))
    assert rerank.identity != RerankStep(replace(rerank.config, depth=30), Scorer(), ("fusion",)).identity
    assert rerank.identity != RerankStep(replace(rerank.config, interpolate=0.5), Scorer(), ("fusion",)).identity
    assert rerank.identity == RerankStep(replace(rerank.config, threads=4), Scorer(), ("fusion",)).identity
    other_weights = type("Other", (), {"identity": {"model": "m", "sha256": "def"}})()
    assert rerank.identity != RerankStep(rerank.config, other_weights, ("fusion",)).identity  # the model's hash
    bm25 = FirstStageStep("bm25", BM25(BM25Config()))
    assert bm25.identity != FirstStageStep("bm25", BM25(BM25Config(k1=1.2))).identity
    assert bm25.identity != FirstStageStep("bm25", BM25(BM25Config()), depth=200).identity
    assert bm25.identity["stage_version"] == FirstStageStep.stage_version  # a code change is a new key
    assert DocumentsStep("max").identity != DocumentsStep("sum").identity


def test_facts_reach_later_steps_declared_and_read_only_when_asked(tmp_path):
    calls: dict = {}
    built = chain(tmp_path, calls, facts=Facts(model="m", max_tokens=7))
    built.run(QUERIES, 3)
    assert built.step("shift").seen_facts == {"max_tokens": 7, "model": "m"}
    assert built.step("shift2").seen_facts == {"max_tokens": 7, "model": "m"}  # through a step declaring none

    class Lazy(Searcher):
        reads = 0

        @property
        def facts(self):
            Lazy.reads += 1
            return Facts(max_tokens=9)

        @facts.setter
        def facts(self, value):
            pass

    passages = whole_documents(CORPUS)
    lazy = Chain(CORPUS, passages, [FirstStageStep("words", Lazy(calls)), DocumentsStep("max", False, ("words",))],
                 Cache(tmp_path / "lazy"))
    lazy.run(QUERIES, 3)
    assert Lazy.reads == 0  # no later step asked: the tokenizer files a fact may need are never read
    context = Context(QUERIES, CORPUS, passages, 3, facts={"a": Facts(max_tokens=3), "b": Facts()})
    assert context.fact("max_tokens") == 3 and context.fact("tokenizer", "none") == "none"
    with pytest.raises(ValueError, match="unknown fact 'max_token'"):
        context.fact("max_token")


def test_a_run_survives_the_cache_entry_exactly():
    run = Run({"q1": [("b", 0.1 + 0.2), ("a", 1 / 3), ("c", 1e-300)], "q2": [], "q3": [("a", -2.5)]})
    arrays, ids = run_to_entry(run, ["q1", "q2", "q3"])
    assert run_from_entry(arrays, ids, ["q1", "q2", "q3"]) == run  # float64, order kept (ties not re-sorted)
    empty = Run({"q1": []})
    assert run_from_entry(*run_to_entry(empty, ["q1"]), ["q1"]) == empty


def test_two_steps_may_not_share_a_label(tmp_path):
    calls: dict = {}
    passages = whole_documents(CORPUS)
    with pytest.raises(ValueError, match="two steps are labelled shift"):
        Chain(CORPUS, passages, [FirstStageStep("shift", Searcher(calls)), Shift(1.0, ("shift",), calls)],
              Cache(tmp_path))


# ---------------------------------------------------------------------- through the builder: the table and the cache

@dataclass(frozen=True)
class ShiftConfig:
    amount: float = 0.0


@pytest.fixture()
def registered_shift(monkeypatch):
    """A new step, registered as an MMR step would be: one entry in the builder's table, before documents."""
    calls: dict = {}
    entry = StepEntry(read=lambda cfg, specs: ShiftConfig(**(cfg.get("shift") or {})),
                      make=lambda config, built: Shift(config.amount, (built.last,), calls) if config.amount else None)
    table = {}
    for label, existing in STEPS.items():
        if label == "documents":
            table["shift"] = entry
        table[label] = existing
    monkeypatch.setattr(pipeline.build, "STEPS", table)
    return calls


class Reverse:
    """A scorer that prefers short passages, counting the pairs it scores."""

    identity = {"model": "reverse"}

    def __init__(self, calls):
        self.calls = calls

    def score(self, pairs):
        self.calls["pairs"] = self.calls.get("pairs", 0) + len(pairs)
        return -np.array([len(p) for _, p in pairs], dtype=np.float32), {"pairs_computed": float(len(pairs))}


def toy_cfg(tmp_path, *extra):
    return compose_config([f"dataset.path={toy_dataset(tmp_path / 'toy')}", f"cache.dir={tmp_path / 'cache'}",
                           "retriever=hybrid", "++retriever.inputs.dense={name: bm25, k1: 2.0, b: 1.0}",
                           "eval.k=[1,3]", "eval.depth=5", "tracking.enabled=false", *extra])


def test_a_registered_step_runs_in_table_order_and_is_cached(tmp_path, registered_shift):
    cfg = toy_cfg(tmp_path, "+shift.amount=3.0")
    pipeline.run_experiment(cfg)
    trace = pipeline.run_experiment(cfg).trace
    assert list(trace.runs) == ["bm25", "dense", "fusion", "shift", "documents", "units"]
    assert registered_shift == {"shift": 1}  # two evaluations, one run: the cache replayed it
    fused, shifted = trace.runs["fusion"], trace.runs["shift"]
    assert all(s == pytest.approx(f + 3.0) for q in fused for (_, f), (_, s) in zip(fused[q], shifted[q]))
    assert trace.costs["shift_cache_hit"] == 1.0 and trace.costs["shift_spent_cost"] == 0.0
    off = pipeline.run_experiment(toy_cfg(tmp_path))  # amount 0: the step is off, not in the chain
    assert "shift" not in off.trace.runs
    with pytest.raises(ConfigError) as err:  # its label is reserved, as every step's
        pipeline.read_config(toy_cfg(tmp_path, "++retriever.inputs.shift={name: bm25}",
                                     "retriever.fusion.alpha=null"))
    assert err.value.key == "retriever.inputs.shift"


def test_a_changed_reranker_setting_replays_the_fused_run(tmp_path, monkeypatch):
    calls: dict = {}
    monkeypatch.setitem(RERANKERS, "reverse", lambda config, root, enabled: Reverse(calls))
    fused_runs = []
    original = FusionStep.run

    def counted(self, context):
        fused_runs.append(asdict(self.config))
        return original(self, context)

    monkeypatch.setattr(FusionStep, "run", counted)
    rerank = ["reranker=cross_encoder", "reranker.name=reverse"]
    first = pipeline.run_experiment(toy_cfg(tmp_path, *rerank, "reranker.depth=3"))
    deeper = pipeline.run_experiment(toy_cfg(tmp_path, *rerank, "reranker.depth=5"))
    assert len(fused_runs) == 1  # the fused run came from the cache the second time
    assert deeper.timings["fusion_cache_hit"] == 1.0 and deeper.timings["rerank_cache_hit"] == 0.0
    assert deeper.trace.runs["fusion"] == first.trace.runs["fusion"]
    assert first.timings["rerank_pairs_computed"] > 0 and calls["pairs"] > 0
    scored = calls["pairs"]
    again = pipeline.run_experiment(toy_cfg(tmp_path, *rerank, "reranker.depth=5"))
    assert calls["pairs"] == scored and again.timings["rerank_pairs_computed"] == 0.0  # replayed, nothing scored
    assert again.run == deeper.run
