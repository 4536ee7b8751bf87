"""One step interface: every step of the chain (first stages, fusion, rerank, documents, units, diversify, ...) is a
`Step` with an `identity`, declared `facts` and `run(context) -> StepResult`.

- `identity`: a JSON-able dict, the step's cache key: every setting that changes its output, its model's weights
  hash and the step's `code_version` (bump it when the code changes what the same settings produce).
- `facts`: what later steps (and the checks after the chain) may rely on, declared, never probed: the model's
  tokenizer, its maximum tokens, whether it is case-sensitive. `Facts()` declares none.
- `reads`: the labels of the earlier results the step reads (empty for a first stage, which reads the queries and
  the passages only); with the step's identity they make its cache key, so a changed setting of step k replays
  every earlier step from the cache and recomputes step k and those reading it.
- `cached`: whether the chain stores the step's result (`Cache.get_or_compute`, cache stage `step_runs`); cheap
  steps (documents, units) are recomputed instead.
- `run(context)` reads `context.queries`, `context.passages`, `context.depth` and earlier results
  (`context.input()`, `context.inputs()`, `context.results`) and returns a `StepResult`: the run, the per-query
  latency of the first `LATENCY_SAMPLE` queries (in ms), and its costs and stats, named as the trace and the logged
  metrics show them (a step prefixes them with its label: `bm25_index_seconds`, `rerank_pairs`). On a cache hit the
  chain replays the stored latency and costs, with every cost named `*spent_*` (money, tokens, requests spent
  computing it) set to 0: they were spent then, not now.

The chain (`pipeline.chain.Chain`) runs the steps in order; `pipeline.build.build_chain` is the only place steps
are made. Writing and registering a new step, e.g. an MMR diversification after rerank:

    # retrieval_lab/diversify/__init__.py: the step and its typed config
    @dataclass(frozen=True)
    class MMRConfig:
        name: str = "none"   # none: the step is off
        lambda_: float = 0.7

    class MMRStep(Step):
        label = "diversify"   # its run's name in the trace (and a reserved hybrid input label)
        code_version = 1

        def __init__(self, config: MMRConfig, reads: tuple[str, ...]):
            self.config, self.reads = config, reads

        @property
        def identity(self) -> dict:
            return {"name": "mmr", "code_version": self.code_version, **asdict(self.config)}

        def run(self, context: Context) -> StepResult:
            before = context.input()          # the run it diversifies: the one before it
            tokenizer = context.fact("tokenizer")  # a fact an earlier step declared (None: none did)
            run, latency = per_query(context.queries.ids, lambda qid: self.one(qid, before.run[qid]))
            return StepResult(run, latency, {"diversify_seconds": ...})

    # retrieval_lab/pipeline/build.py: one entry in the builder's table (chain order = table order)
    STEPS = {..., "rerank": ..., "diversify": StepEntry(read=read_mmr, make=make_mmr), "documents": ..., ...}
    # read(cfg, specs) -> the typed, validated config or None (step off); make(config, built) -> the step, where
    # `built.last` is the label of the run before it (its `reads`), `built.facts` the first stages' facts

plus its config group (`conf/diversify/*.yaml`) and tests. Nothing else changes: the chain caches it, times it and
records its result in the `Trace` under its label.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from retrieval_lab.chunking import Passages
from retrieval_lab.types import Corpus, Queries, Run

LATENCY_SAMPLE = 50  # queries searched one at a time and timed (p50/p95 latency)


@dataclass(frozen=True)
class Facts:
    """What a step declares for later steps. A field left None is not declared."""

    model: str | None = None  # the model's name, for messages (`embedder minilm_l6 is case-sensitive`)
    tokenizer: Any = None  # the model's Hugging Face (fast) tokenizer: `chunker.tokenizer=embedder`, truncation
    max_tokens: int | None = None  # tokens the model reads of a passage; longer ones are truncated
    case_sensitive: bool | None = None  # whether "Protein" and "protein" differ to the model


@dataclass
class StepResult:
    """What a step produced for a query set."""

    run: Run  # query id -> [(id, score)] best first: passage ids, document ids or unit ids
    latency_ms: np.ndarray  # ms per query of the latency sample (the first `LATENCY_SAMPLE` queries)
    costs: dict[str, float] = field(default_factory=dict)  # seconds, pairs, index size, tokens spent, ...
    key: str = ""  # the content key of this result (step identity + read results' keys + queries, passages,
    # depth): what later steps' keys are made of; set by the chain
    hit: bool = False  # replayed from the cache


@dataclass
class Context:
    """What a step runs on: the queries, the corpus and its passages, the depth (documents wanted per query), the
    earlier steps' results and facts (by label, in chain order), and the labels the running step reads."""

    queries: Queries
    corpus: Corpus
    passages: Passages
    depth: int
    results: dict[str, StepResult] = field(default_factory=dict)
    facts: dict[str, Facts] = field(default_factory=dict)
    reads: tuple[str, ...] = ()  # the running step's `reads`

    def inputs(self) -> list[StepResult]:
        """The results the running step reads, in the order of its `reads`."""
        return [self.results[label] for label in self.reads]

    def input(self) -> StepResult:
        """The one result the running step reads (its `reads` names exactly one)."""
        if len(self.reads) != 1:
            raise ValueError(f"the step reads {len(self.reads)} results ({', '.join(self.reads)}), not one")
        return self.results[self.reads[0]]

    def fact(self, name: str, default: Any = None) -> Any:
        """A fact the latest earlier step declaring it gave (`tokenizer`, `max_tokens`, ...), else `default`."""
        for facts in reversed(list(self.facts.values())):
            value = getattr(facts, name)  # a declared dataclass field: an unknown name raises AttributeError
            if value is not None:
                return value
        return default


class Step:
    """Base of every step (subclass it, or match its attributes). Override `identity` and `run`; a step with
    facts sets `facts`, a step reading earlier results sets `reads`."""

    label: str = ""  # its run's name in the trace, metrics and costs
    code_version: ClassVar[int] = 1  # part of `identity`: bump when the same settings give another output
    reads: tuple[str, ...] = ()
    cached: bool = True
    facts: Facts = Facts()

    @property
    def identity(self) -> dict:
        raise NotImplementedError

    def run(self, context: Context) -> StepResult:
        raise NotImplementedError


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def per_query(query_ids: list[str], one: Callable[[str], list[tuple[str, float]]]) -> tuple[Run, list[float]]:
    """`one(query id)` for each query, the first `LATENCY_SAMPLE` timed: a step that works query by query."""
    out, latency = Run(), []
    for row, qid in enumerate(query_ids):
        t0 = time.perf_counter()
        out[qid] = one(qid)
        if row < LATENCY_SAMPLE:
            latency.append(ms_since(t0))
    return out, latency


# ------------------------------------------------------------------------------------------- a run as a cache entry

def run_to_entry(run: Run, query_ids: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """A run as arrays (`rows` into the id list, -1 padded; `scores` float64, so a replay equals the computed run
    exactly) and the id list (JSON payload), each query's hits in their order."""
    ids: dict[str, int] = {}
    width = max((len(run.get(qid, [])) for qid in query_ids), default=0)
    rows = np.full((len(query_ids), width), -1, dtype=np.int64)
    scores = np.zeros((len(query_ids), width), dtype=np.float64)
    for r, qid in enumerate(query_ids):
        for c, (hit, score) in enumerate(run.get(qid, [])):
            rows[r, c] = ids.setdefault(hit, len(ids))
            scores[r, c] = score
    return {"rows": rows, "scores": scores}, list(ids)


def run_from_entry(arrays: dict[str, np.ndarray], ids: list[str], query_ids: list[str]) -> Run:
    rows, scores = np.asarray(arrays["rows"]), np.asarray(arrays["scores"])
    return Run({qid: [(ids[j], float(s)) for j, s in zip(rows[r].tolist(), scores[r].tolist()) if j >= 0]
                for r, qid in enumerate(query_ids)})
