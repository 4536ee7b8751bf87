"""The own-documents path gives what the BEIR path gives, on a SciFact subset written out as Markdown, HTML, text and
PDF files (retrieval_lab/data/roundtrip.py, retrieval_lab/pipeline/roundtrip.py; benchmarks/folder_consistency.py does
the same on the whole corpus, with dense retrievers too).

The subset: the first 30 test claims with their relevant documents, filled up to 300 documents in corpus order,
written once as a BEIR folder (with the claims' rationale metadata, so it has span gold) and once as a folder of
documents with a questions JSONL. BM25 over both must agree.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_lab.data import data_root
from retrieval_lab.data import roundtrip
from retrieval_lab.pipeline.roundtrip import compare_runs

QUERIES = 30
DOCUMENTS = 300

pytestmark = pytest.mark.skipif(not (data_root() / "scifact").is_dir(),
                                reason="SciFact not under the data root (retrieval-lab data pull scifact)")


def write_beir_subset(dataset, dest: Path) -> None:
    """A BEIR folder with the first QUERIES judged queries (their metadata kept) and DOCUMENTS documents holding
    all their relevant ones."""
    queries = dataset.queries.ids[:QUERIES]
    relevant = {d for q in queries for d in dataset.qrels[q]}
    keep = set(relevant)
    for doc in dataset.corpus.ids:
        if len(keep) >= DOCUMENTS:
            break
        keep.add(doc)
    (dest / "qrels").mkdir(parents=True)
    corpus = dataset.corpus
    with open(dest / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc, title, text in zip(corpus.ids, corpus.titles, corpus.texts):
            if doc in keep:
                fh.write(json.dumps({"_id": doc, "title": title, "text": text}, ensure_ascii=False) + "\n")
    metadata = dataset.queries.metadata or [{}] * len(dataset.queries)
    with open(dest / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, text, meta in zip(dataset.queries.ids, dataset.queries.texts, metadata):
            if qid in queries:
                fh.write(json.dumps({"_id": qid, "text": text, "metadata": meta}, ensure_ascii=False) + "\n")
    with open(dest / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid in queries:
            for doc, grade in dataset.qrels[qid].items():
                fh.write(f"{qid}\t{doc}\t{grade}\n")


def test_folder_path_matches_beir_path(tmp_path):
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset

    full = load_dataset(compose_config(["dataset=scifact"]).dataset)
    write_beir_subset(full, tmp_path / "beir")
    cache = [f"cache.dir={tmp_path / 'cache'}"]
    base = ["dataset=scifact", f"dataset.path={tmp_path / 'beir'}", *cache]
    beir = load_dataset(compose_config(base).dataset, cache_root=str(tmp_path / "cache"))
    assert len(beir.corpus) == DOCUMENTS and len(beir.queries) == QUERIES and beir.evidence

    paths = roundtrip.write_documents(beir.corpus, tmp_path / "docs")
    formats = {p.split("/")[0] for p in paths.values()}
    relevant_formats = {paths[d].split("/")[0] for q in beir.qrels for d in beir.qrels[q]}
    assert formats == relevant_formats == set(roundtrip.FORMATS)
    questions = tmp_path / "questions.jsonl"
    assert roundtrip.write_questions(beir, paths, questions) > 0

    beir, own = roundtrip.load_both(base, tmp_path / "docs", questions, str(tmp_path / "cache"))
    assert sorted(roundtrip.doc_id_of(d) for d in own.corpus.ids) == sorted(beir.corpus.ids)
    assert roundtrip.mapped_qrels(own.qrels) == {q: dict(d) for q, d in beir.qrels.items()}
    assert roundtrip.same_evidence(beir, own)
    stats = roundtrip.compare_corpora(beir.corpus, own.corpus, paths)
    for fmt, entry in stats.items():  # what each format may change: layout, never a character
        assert entry["imported"] == entry["documents"], (fmt, entry)
        assert set(entry["text"]) <= {"same", "whitespace", "line breaks"}, (fmt, entry)
        if fmt != "text":  # a text file's title is its file name: a `/` in it cannot be kept
            assert set(entry["title"]) <= {"same", "whitespace"}, (fmt, entry)
    assert stats["markdown"]["text"] == {"same": stats["markdown"]["documents"]}
    assert set(stats["pdf"]["text"]) == {"line breaks"}  # lines are wrapped at 90 characters

    run = compare_runs(beir, own, ["retriever=bm25"], base, tmp_path / "docs", questions, paths)
    assert run["beir"]["queries"] == run["folder"]["queries"] == QUERIES
    assert abs(run["difference"]["ndcg_at_10"]) <= 0.005, run
    assert run["beir"]["ndcg_at_10"] > 0.3  # the subset is retrievable at all: agreement is not two zeros
