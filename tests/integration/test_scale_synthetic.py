"""A 20,000-document synthetic corpus fitted on SciFact through the real pipeline, cold cache: BM25 and WordLlama over
an IVF index sized for N, fused; passages read their texts from the corpus; known-item queries are found."""
from __future__ import annotations

import pytest

from retrieval_lab.chunking import PassageTexts
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.data.beir import load_queries
from retrieval_lab.data.synthetic_corpus import fit, write_corpus
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.pipeline.retriever import Retriever

DOCS = 20_000


@pytest.fixture(scope="module")
def config(data_root, tmp_path_factory):
    scifact = load_dataset(data_root / "scifact")
    folder = tmp_path_factory.mktemp("scale") / "synthetic-20k"
    write_corpus(fit(scifact.corpus, load_queries(scifact.path / "queries.jsonl")), folder, DOCS, queries=100)
    cache = tmp_path_factory.mktemp("scale-cache")  # cold: every stage is computed, streaming paths included
    cfg = compose_config([f"dataset.path={folder}", f"cache.dir={cache}", "tracking.enabled=false",
                          "retriever=hybrid", "embedder=wordllama", "embedder.progress=false", "index=ivf",
                          "chunker.tokenizer=whitespace"])  # token counts for statistics only: skip WordPiece
    return cfg


@pytest.fixture(scope="module")
def outcome(config):
    return run_experiment(config)


def test_bm25_and_ivf_find_the_known_items(outcome):
    runs = outcome.trace.runs
    assert len(outcome.dataset.corpus) == DOCS
    queries = outcome.dataset.queries.ids
    hits = {label: sum(bool(outcome.dataset.qrels[q].keys() & {d for d, _ in runs[label][q]}) for q in queries)
            / len(queries) for label in ("bm25", "dense")}
    assert hits["bm25"] >= 0.95  # its own words find a document among 20,000
    assert hits["dense"] >= 0.4  # a bag of words averaged: weaker, far above chance (100 of 20,000)
    assert outcome.evaluation.means["recall_at_100"] >= 0.95


def test_ivf_is_sized_for_the_corpus(outcome):
    timings = outcome.timings
    # 4·sqrt(20,000) = 566 lists, at most 20,000 / 39 = 512; nlist / 8 = 64 probes, 4,096 vectors' worth = 105
    assert (timings["dense_index_nlist"], timings["dense_index_nprobe"]) == (512, 105)
    assert timings["dense_index_train_size"] == DOCS  # 64 per list exceeds N
    assert timings["dense_ann_recall_at_10"] >= 0.9
    assert timings["dense_embeddings_cache_hit"] == 0.0 and timings["bm25_index_size_bytes"] > 0


def test_passages_hold_no_copy_of_the_corpus(config, outcome):
    corpus = outcome.dataset.corpus
    passages = Retriever(config, corpus).passages  # the cached passages stage
    assert isinstance(passages.texts, PassageTexts) and len(passages.texts) == DOCS
    assert passages.texts[7] == f"{corpus.titles[7]} {corpus.texts[7]}"
