"""Reranking: reorder the top N, keep the rest below, interpolate; score cache keyed by (model, query, passage);
the pipeline logs the first-stage recall ceiling and rerank latency."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab import pipeline
from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.rerank import RERANKERS, rerank, reranker_config
from retrieval_lab.rerank.scores import ScoreStore, pair_key
from retrieval_lab.types import Queries, Run
from tests.unit.test_fusion_pipeline import toy_dataset


class LengthScorer:
    """Scores a pair by the passage's length (a known, model-free ranking); counts what it is asked."""

    identity = {"model": "length"}

    def __init__(self):
        self.calls = []

    def score(self, pairs):
        self.calls.append(list(pairs))
        return (np.array([len(p) for _, p in pairs], dtype=np.float32),
                {"pairs_computed": float(len(pairs)), "seconds_per_pair": 0.001})


TEXT = {"a": "x", "b": "xxx", "c": "xx", "d": "xxxxxxxx"}
RUN = Run({"q": [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]})
QUERIES = Queries(["q"], ["query"])


def test_rerank_reorders_top_n_and_keeps_the_rest_below():
    scorer = LengthScorer()
    out, stats = rerank(RUN, QUERIES, TEXT, scorer, depth=3)
    assert [d for d, _ in out["q"]] == ["b", "c", "a", "d"]  # d is longest but beyond depth 3
    assert scores_descending(out["q"])
    assert len(scorer.calls[0]) == 3 and stats["rerank_pairs"] == 3
    assert stats["rerank_ms_per_query"] == pytest.approx(3.0)  # 3 pairs x 1 ms


def test_interpolation_mixes_normalized_first_stage_scores():
    # reranker minmax over a,b,c: a 0, b 1, c .5; first stage minmax: a 1, b .5, c 0
    out, _ = rerank(RUN, QUERIES, TEXT, LengthScorer(), depth=3, interpolate=0.5)
    assert dict(out["q"][:3]) == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.25})
    out, _ = rerank(RUN, QUERIES, TEXT, LengthScorer(), depth=3, interpolate=1.0)
    assert [d for d, _ in out["q"]] == ["a", "b", "c", "d"]  # all first stage: nothing moves


def scores_descending(hits):
    return all(hits[i][1] >= hits[i + 1][1] for i in range(len(hits) - 1))


def test_score_store_keys_on_model_query_and_passage(tmp_path):
    store = ScoreStore(tmp_path, {"model": "m1"})
    store.put({pair_key("q", "p"): 1.5})
    assert store.get([pair_key("q", "p"), pair_key("q", "p2")]) == {pair_key("q", "p"): 1.5}
    assert ScoreStore(tmp_path, {"model": "m1"}).get([pair_key("q", "p")]) == {pair_key("q", "p"): 1.5}
    assert ScoreStore(tmp_path, {"model": "m2"}).get([pair_key("q", "p")]) == {}
    assert pair_key("q", "p") != pair_key("q ", "p") and pair_key("ab", "c") != pair_key("a", "bc")


@pytest.mark.parametrize("node,key", [
    ({"name": "colbert"}, "reranker.name"),
    ({"name": "cross_encoder", "model": "m", "depth": 0}, "reranker.depth"),
    ({"name": "cross_encoder", "model": "m", "interpolate": 2.0}, "reranker.interpolate"),
    ({"name": "cross_encoder", "model": "m", "dpeth": 5}, "reranker.dpeth"),
    ({"name": "cross_encoder", "model": "m", "backend": "tensorrt"}, "reranker.backend"),
    ({"name": "cross_encoder", "model": "m", "max_length": 0}, "reranker.max_length"),
    ({"name": "cross_encoder"}, "reranker.model"),
    ({"name": "cross_encoder", "type": "cross_encoder", "model": "m"}, "reranker.type"),
])
def test_bad_reranker_config_names_the_key(node, key):
    with pytest.raises(ConfigError) as err:
        reranker_config(node)
    assert err.value.key == key


def test_default_config_has_reranking_off():
    cfg = compose_config([])
    assert not reranker_config(cfg.reranker).active
    assert reranker_config(compose_config(["reranker=cross_encoder"]).reranker).active


@pytest.fixture()
def length_reranker(monkeypatch):
    scorers = []

    def factory(config, cache_root, enabled):
        scorers.append(LengthScorer())
        return scorers[-1]

    monkeypatch.setitem(RERANKERS, "length", factory)
    return scorers


def test_pipeline_reranks_and_logs_ceiling_and_latency(tmp_path, length_reranker):
    folder = toy_dataset(tmp_path / "toy")
    base = [f"dataset.path={folder}", f"cache.dir={tmp_path / 'cache'}", "eval.k=[1,3,10]", "eval.depth=10"]
    plain = pipeline.run_experiment(compose_config(base))
    cfg = compose_config([*base, "reranker=cross_encoder", "reranker.name=length",
                          "reranker.depth=3"])
    outcome = pipeline.run_experiment(cfg)
    # one call per query, as a live search makes it: its batches (and int8 scores) are one query's candidates
    assert len(length_reranker) == 1 and len(length_reranker[0].calls) == len(outcome.run)
    assert all(len(call) == 3 for call in length_reranker[0].calls)
    assert "first_stage_recall_at_3" in outcome.extra_metrics
    assert outcome.extra_metrics["first_stage_ndcg_at_10"] == pytest.approx(plain.evaluation.means["ndcg_at_10"])
    assert outcome.timings["rerank_ms_per_query"] == pytest.approx(3.0)
    for qid, hits in outcome.run.items():  # ranks 4 and below are the first stage's, unchanged
        assert [d for d, _ in hits[3:]] == [d for d, _ in plain.run[qid][3:]]
        assert {d for d, _ in hits[:3]} == {d for d, _ in plain.run[qid][:3]}


PAIRS = [("vitamin d and bone density", "Vitamin D deficiency lowers bone mineral density in adults. " * 30),
         ("vitamin d and bone density", "A short unrelated passage."),
         ("what causes malaria", "Plasmodium parasites spread by mosquitoes cause malaria."),
         ("what causes malaria", "Bone density is measured by DXA.")]
