"""The retriever you export is the one you evaluated, and its latency counts every stage.

- `load_retriever(export).search(q, k=10)` returns, for every Cranfield test query and from an empty cache, exactly
  the top 10 documents of the evaluated run's logged `run.trec` (a chunked BM25 + WordLlama hybrid, with and without
  a reranker). Cranfield: its 1,400 abstracts are chunked, indexed and embedded twice (the run, then the export from
  an empty cache) in seconds, where SciFact's 5,183 took minutes.
- A reranker that sleeps 5 ms per pair at depth 20 adds at least 100 ms to `query_p50_ms`, and `best` names the
  unreranked configuration as the cheapest when the two are not significantly different.
"""
from __future__ import annotations

import time
import zlib

import numpy as np
import pytest

from retrieval_lab import load_retriever, tracking
from retrieval_lab.commands.best import rank
from retrieval_lab.config import compose_config
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.pipeline.export import export_run
from retrieval_lab.pipeline.tracked import log_outcome
from retrieval_lab.rerank import RERANKERS
from retrieval_lab.types import Run
from tests.integration.sweep_util import tiny_beir


class OverlapScorer:
    """A fast, model-free reranker: shared words between query and passage, ties broken by a hash of the passage."""

    identity = {"model": "overlap"}

    def score(self, pairs):
        return np.array([len(set(q.lower().split()) & set(p.lower().split())) + (zlib.crc32(p.encode()) % 997) / 1e4
                         for q, p in pairs], dtype=np.float32), {}


class SleepingScorer:
    """Keeps the first-stage order (descending scores in the order given) and sleeps 5 ms per pair, as a slow
    cross-encoder would."""

    identity = {"model": "sleeping"}

    def score(self, pairs):
        time.sleep(0.005 * len(pairs))
        return -np.arange(len(pairs), dtype=np.float32), {}


@pytest.fixture()
def fake_rerankers(monkeypatch):
    monkeypatch.setitem(RERANKERS, "overlap", lambda config, root, enabled: OverlapScorer())
    monkeypatch.setitem(RERANKERS, "sleeping", lambda config, root, enabled: SleepingScorer())


@pytest.fixture(scope="module")
def eval_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")  # shared by both configurations: chunks and embeddings once


def logged_run(uri: str, run_id: str, tmp_path) -> Run:
    path = tracking.client({"uri": uri}).download_artifacts(run_id, "run.trec", str(tmp_path))
    return Run.from_trec(path)


@pytest.mark.parametrize("reranker", [[], ["reranker=cross_encoder", "reranker.name=overlap",
                                           "reranker.depth=20"]], ids=["hybrid", "hybrid+reranker"])
def test_search_returns_the_logged_top_10_for_every_query(data_root, tmp_path, mlflow_uri, fake_rerankers,
                                                          eval_cache, reranker):
    cfg = compose_config([f"dataset.root={data_root}", "dataset=cranfield", "retriever=hybrid", "embedder=wordllama",
                          "chunker=fixed_tokens", "chunker.aggregate=max", f"cache.dir={eval_cache}",
                          "tracking.experiment=export-equals-evaluation", *reranker])
    outcome = run_experiment(cfg)
    run_id = log_outcome(cfg, outcome)
    export_run(tracking.client({"uri": mlflow_uri}), run_id, tmp_path / "best.yaml")
    logged = logged_run(mlflow_uri, run_id, tmp_path)
    assert len(logged) == 225 and outcome.evaluation.means["ndcg_at_10"] > 0.3

    fresh = tmp_path / "fresh-cache"
    retriever = load_retriever(tmp_path / "best.yaml", [f"cache.dir={fresh}"])
    assert str(retriever.chain.cache.root) == str(fresh)
    differing = []
    for qid, text in zip(outcome.dataset.queries.ids, outcome.dataset.queries.texts):
        searched = [hit["doc_id"] for hit in retriever.search(text, k=10)]
        if searched != [doc for doc, _ in logged[qid][:10]]:
            differing.append(qid)
    assert differing == [], f"{len(differing)} of 225 queries rank differently in search: {differing[:5]}"


def test_latency_counts_the_reranker_and_best_picks_the_cheaper_equal_configuration(tmp_path, mlflow_uri,
                                                                                   fake_rerankers):
    folder = tiny_beir(tmp_path / "tiny", docs=60, queries=20)
    base = [f"dataset.path={folder}", f"cache.dir={tmp_path / 'cache'}", "tracking.experiment=latency",
            "eval.k=[1,5,10]", "eval.depth=20"]
    plain_cfg = compose_config([*base, "tracking.run_name=plain"])
    reranked_cfg = compose_config([*base, "tracking.run_name=reranked", "reranker=cross_encoder",
                                   "reranker.name=sleeping", "reranker.depth=20"])
    plain, reranked = run_experiment(plain_cfg), run_experiment(reranked_cfg)
    def ids(run):
        return {qid: [doc for doc, _ in hits] for qid, hits in run.items()}

    assert ids(reranked.run) == ids(plain.run)  # same ranking: the fake keeps the first-stage order
    assert reranked.trace.latency_ms["rerank"].min() >= 100.0
    assert reranked.timings["query_p50_ms"] >= plain.timings["query_p50_ms"] + 100.0
    assert reranked.timings["rerank_p50_ms"] >= 100.0 and "documents_p50_ms" in plain.timings
    log_outcome(plain_cfg, plain)
    log_outcome(reranked_cfg, reranked)

    ranking = rank(tracking.client({"uri": mlflow_uri}), "latency", "ndcg_at_10", trials=1000)
    assert {c.name for c in ranking.candidates} == {"plain", "reranked"}
    assert not any(row.significantly_worse(0.05) for row in ranking.recommendation.rows)
    assert ranking.pick.name == "plain"  # the same ranking on every question: shown non-inferior, and cheaper
