"""Chunking on the real collections: exact offsets on 1,500 documents of each (every chunker), SciFact's sentence
gold recovered, chunk-level runs aggregated to documents with rationale metrics, config errors before any work."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import build_passages, with_title
from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.pipeline import run_experiment
from tests.integration.samples import corpus_rows

REPO = Path(__file__).resolve().parents[2]
DATASETS = ["scifact", "nfcorpus", "arguana", "cranfield"]
CHUNKERS = ["fixed_tokens", "sentences", "recursive", "semantic"]


OFFSET_SAMPLE = 1500  # documents per corpus: all of Cranfield's 1,400; of the others, as many drawn at random


@pytest.fixture(scope="module")
def corpora(data_root):
    """Each dataset's corpus, cut to OFFSET_SAMPLE documents (the corpus order kept): the 16 chunkings of all four
    whole corpora took minutes of the suite, tokenizing ArguAna's 8,674 arguments four times over."""
    cut = {}
    for name in DATASETS:
        corpus = load_dataset(data_root / name, split="test", name=name).corpus
        rows = sorted(random.Random(0).sample(range(len(corpus)), min(OFFSET_SAMPLE, len(corpus))))
        cut[name] = corpus_rows(corpus, rows)
    return cut


@pytest.mark.parametrize("chunker", CHUNKERS)
@pytest.mark.parametrize("name", DATASETS)
def test_offsets_are_exact_on_every_dataset(corpora, name, chunker):
    corpus = corpora[name]
    node = compose_config([f"chunker={chunker}"]).chunker
    passages = build_passages(node, corpus, Cache())  # the shared test cache: computed once
    row = corpus.index_of()
    assert len(passages) >= len(corpus) and set(passages.doc_ids) == set(corpus.ids)
    for doc, text, s, e in zip(passages.doc_ids, passages.texts, passages.starts, passages.ends):
        r = row[doc]
        own = corpus.texts[r][s:e]
        assert text == with_title(corpus.titles[r], own)  # doc_text[start:end] is the chunk; title only indexed
    assert passages.n_tokens is not None and passages.n_tokens.max() > 0


def scifact_claims(data_root):
    from retrieval_lab.data.beir import load_corpus, load_queries

    folder = data_root / "scifact"
    corpus = load_corpus(next(folder.glob("corpus.jsonl*")))
    return corpus, load_queries(folder / "queries.jsonl")  # train and test claims


STOP = set("the a an of in and or to is are was were be by for with on at from that this as it its which".split())


def words(text):
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}


def test_scifact_sentence_indices_make_sense(data_root):
    """The recovered sentences line up with SciFact's rationale indices: in range, and the claim's words peak at
    the gold sentence rather than its neighbours (an off-by-one split would move the peak)."""
    corpus, queries = scifact_claims(data_root)
    texts = dict(zip(corpus.ids, corpus.texts))
    score, total, out_of_range = Counter(), 0, 0
    for claim, meta in zip(queries.texts, queries.metadata):
        q = words(claim)
        for doc, rationales in meta.items():
            sents = [texts[doc][s:e] for s, e in sentence_spans(texts[doc])]
            assert " ".join(sents) == texts[doc].strip() or "  " in texts[doc]  # joined by single spaces
            sim = [len(q & words(s)) / max(1, len(words(s))) ** 0.5 for s in sents]
            for r in rationales:
                for i in r["sentences"]:
                    total += 1
                    if i >= len(sents):
                        out_of_range += 1
                        continue
                    for shift in (-1, 0, 1):
                        if 0 <= i + shift < len(sents):
                            score[shift] += sim[i + shift]
    assert total == 1391 and out_of_range <= 1
    assert score[0] > 1.5 * score[-1] and score[0] > 1.5 * score[1]


@pytest.fixture(scope="module")
def scifact_runs(data_root):
    base = ["dataset=scifact", f"dataset.root={data_root}", "tracking.enabled=false", "chunker=sentences",
            "chunker.size=3"]
    return {mode: run_experiment(compose_config([*base, f"chunker.aggregate={mode}"]))
            for mode in ("max", "sum", "first")}


def test_bm25_over_sentence_chunks_gives_document_and_rationale_metrics(scifact_runs):
    outcome = scifact_runs["max"]
    means, extra = outcome.evaluation.means, outcome.extra_metrics
    assert 0.62 < means["ndcg_at_10"] < 0.72 and 0.85 < means["recall_at_100"] <= 1.0
    for qid, hits in outcome.run.items():
        docs = [d for d, _ in hits]
        assert len(docs) == len(set(docs)), f"a document counted twice for {qid}"
        assert "#" not in "".join(docs)
    assert sum(len(h) == 100 for h in outcome.run.values()) >= 290  # depth filled with distinct documents
    assert extra["chunks"] > 15_000 and extra["docs_single_chunk_share"] < 0.1
    assert extra["evidence_queries"] > 150
    for name in ("evidence_coverage_at_10", "evidence_iou_at_10", "evidence_coverage_budget_256",
                 "evidence_coverage_budget_512", "evidence_coverage_budget_1024"):
        assert 0.0 < extra[name] <= 1.0, name
    assert extra["evidence_coverage_budget_256"] <= extra["evidence_coverage_budget_512"] \
        <= extra["evidence_coverage_budget_1024"]
    assert extra["evidence_coverage_at_1"] <= extra["evidence_coverage_at_5"] <= extra["evidence_coverage_at_10"]


def test_aggregations_differ_and_never_repeat_documents(scifact_runs):
    ndcg = {mode: o.evaluation.means["ndcg_at_10"] for mode, o in scifact_runs.items()}
    assert len(set(ndcg.values())) == 3, ndcg
    assert ndcg["max"] > ndcg["first"]  # the first chunk alone misses evidence further down the abstract
    for outcome in scifact_runs.values():
        assert all(len({d for d, _ in h}) == len(h) for h in outcome.run.values())


def test_datasets_without_span_gold_skip_span_metrics(data_root):
    outcome = run_experiment(compose_config(["dataset=nfcorpus", f"dataset.root={data_root}",
                                             "tracking.enabled=false", "chunker=fixed_tokens"]))
    assert "chunks" in outcome.extra_metrics and "chunk_tokens_p95" in outcome.extra_metrics
    assert not outcome.dataset.evidence and not outcome.extra_per_query
    assert not any(k.startswith("evidence_") for k in outcome.extra_metrics)


def cli(args):
    return subprocess.run([sys.executable, "-m", "retrieval_lab.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), cwd=REPO, timeout=1200)


@pytest.mark.parametrize("override, key", [
    ("chunker.overlap=128", "chunker.overlap"),
    ("chunker.size=0", "chunker.size"),
    ("chunker.tokenizer=cl100k_base", "chunker.tokenizer"),
])
def test_chunker_config_errors_before_any_work(override, key, tmp_path):
    proc = cli(["run", "chunker=fixed_tokens", override, f"dataset.root={tmp_path}/nothing",
                "tracking.enabled=false", f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode == 2, proc.stderr
    assert f"config key '{key}'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dense_over_sentence_chunks_logs_document_and_rationale_metrics(data_root, mlflow_uri, tmp_path):
    # WordLlama: MiniLM-L6 would encode 16,735 chunks (20+ minutes on a cold cache); truncation counting is
    # covered in tests/unit/test_dense_stage.py
    proc = cli(["run", "dataset=scifact", f"dataset.root={data_root}", "chunker=sentences", "chunker.size=3",
                "retriever=dense", "embedder=wordllama", f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("scifact").experiment_id])
    metrics = run.data.metrics
    assert 0.5 < metrics["ndcg_at_10"] < 0.8
    for name in ("recall_at_100", "evidence_coverage_at_10", "evidence_iou_at_10", "evidence_coverage_budget_512",
                 "chunks", "chunk_tokens_p95", "docs_single_chunk_share"):
        assert name in metrics, name
    assert run.data.params["chunker.name"] == "sentences" and run.data.params["chunker.size"] == "3"
