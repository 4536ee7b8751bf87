"""MMR diversification through the real chain, on a SciFact subset (the first 30 test claims, 300 documents, recursive
chunks of 128 tokens, BM25 + MiniLM-L3 hybrid):

- `diversify=mmr` reorders the fused passages (a near-duplicate chunk steps aside for some query), records its run
  and latency in the trace, and the exported retriever's `search` returns, for every claim, exactly the top 10
  documents of the evaluated run that was logged;
- a pipeline without a dense stage gets a ConfigError naming `diversify.embedder`, and its printed fix runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_lab import load_retriever, tracking
from retrieval_lab.pipeline.export import export_run
from retrieval_lab.pipeline.tracked import log_outcome
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline import run_experiment, validate
from retrieval_lab.types import Run

QUERIES, DOCUMENTS = 30, 300


def write_subset(dest: Path) -> Path:
    """A BEIR folder: the first QUERIES test claims (rationale metadata kept: span gold) and DOCUMENTS documents
    holding all their relevant ones."""
    full = load_dataset(compose_config(["dataset=scifact"]).dataset)
    queries = full.queries.ids[:QUERIES]
    keep = {d for q in queries for d in full.qrels[q]}
    for doc in full.corpus.ids:
        if len(keep) >= DOCUMENTS:
            break
        keep.add(doc)
    (dest / "qrels").mkdir(parents=True)
    with open(dest / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc, title, text in zip(full.corpus.ids, full.corpus.titles, full.corpus.texts):
            if doc in keep:
                fh.write(json.dumps({"_id": doc, "title": title, "text": text}) + "\n")
    metadata = full.queries.metadata or [{}] * len(full.queries)
    with open(dest / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, text, meta in zip(full.queries.ids, full.queries.texts, metadata):
            if qid in queries:
                fh.write(json.dumps({"_id": qid, "text": text, "metadata": meta}) + "\n")
    rows = [f"{q}\t{d}\t{g}" for q in queries for d, g in full.qrels[q].items()]
    (dest / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return dest


@pytest.fixture(scope="module")
def subset(data_root, tmp_path_factory) -> Path:
    return write_subset(tmp_path_factory.mktemp("scifact-subset") / "beir")


def base(subset: Path) -> list[str]:
    """The test cache (RETRIEVAL_LAB_CACHE): the subset's chunks and embeddings are computed once across sessions."""
    return ["dataset=scifact", f"dataset.path={subset}", "chunker=recursive", "eval.k=[1,5,10]", "eval.depth=20"]


def test_mmr_reorders_and_search_equals_the_logged_run(subset, tmp_path, mlflow_uri):
    hybrid = [*base(subset), "+pipeline=hybrid_minilm_l3", "tracking.experiment=mmr"]
    plain = run_experiment(compose_config(hybrid))
    cfg = compose_config([*hybrid, "diversify=mmr", "diversify.lambda=0.5"])
    outcome = run_experiment(cfg)
    trace = outcome.trace
    assert list(trace.runs)[-4:] == ["fusion", "diversify", "documents", "units"]
    assert outcome.timings["diversify_p50_ms"] > 0 and len(trace.latency_ms["diversify"]) == QUERIES
    fused, diversified = trace.runs["fusion"], trace.runs["diversify"]
    assert fused == plain.trace.runs["fusion"]  # the fused run replayed; only the new step differs
    changed = [q for q in fused if [p for p, _ in fused[q][:20]] != [p for p, _ in diversified[q][:20]]]
    assert changed, "MMR at lambda 0.5 reordered no query's top 20 passages"
    for qid in fused:  # the top 20 reordered, the same passages; below them nothing moves
        assert sorted(p for p, _ in fused[qid][:20]) == sorted(p for p, _ in diversified[qid][:20])
        assert fused[qid][20:] == diversified[qid][20:]
    assert outcome.extra_metrics["evidence_queries"] > 0  # span metrics scored the diversified units

    run_id = log_outcome(cfg, outcome)
    export_run(tracking.client({"uri": mlflow_uri}), run_id, tmp_path / "best.yaml")
    path = tracking.client({"uri": mlflow_uri}).download_artifacts(run_id, "run.trec", str(tmp_path))
    logged = Run.from_trec(path)
    retriever = load_retriever(tmp_path / "best.yaml")  # search caches no run: each query goes through the chain
    differing = [qid for qid, text in zip(outcome.dataset.queries.ids, outcome.dataset.queries.texts)
                 if [hit["doc_id"] for hit in retriever.search(text, k=10)] != [d for d, _ in logged[qid][:10]]]
    assert differing == [], f"{len(differing)} of {QUERIES} queries rank differently in search: {differing[:5]}"


def test_without_a_dense_stage_the_error_names_the_key_and_its_fix_runs(subset, tmp_path):
    bm25 = [*base(subset), "retriever=bm25", "diversify=mmr", "tracking.enabled=false"]
    with pytest.raises(ConfigError) as err:
        validate(compose_config(bm25))
    assert err.value.key == "diversify.embedder"
    fix = str(err.value).split("fix: ")[1].split(":", 1)[1].split(" (")[0].strip()
    assert fix == "diversify.embedder={name:minilm_l3}"
    outcome = run_experiment(compose_config([*bm25, fix]))
    assert "diversify" in outcome.trace.runs and outcome.evaluation.means["ndcg_at_10"] > 0.3
