"""The four shared BEIR collections load with the counts their provenance file states."""
from __future__ import annotations

import logging

import pytest

from retrieval_lab.data import forget_datasets, load_dataset

COUNTS = {  # name: (docs, test queries, test qrels rows)
    "scifact": (5183, 300, 339),
    "nfcorpus": (3633, 323, 12334),
    "arguana": (8674, 1406, 1406),
    "cranfield": (1400, 225, 1837),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_counts(data_root, name):
    ds = load_dataset(data_root / name, "test")
    docs, queries, rows = COUNTS[name]
    assert (len(ds.corpus), len(ds.queries), sum(len(d) for d in ds.qrels.values())) == (docs, queries, rows)
    assert set(ds.queries.ids) == set(ds.qrels)


def test_arguana_warns_about_its_five_missing_documents(data_root, caplog):
    forget_datasets()  # the warning comes with reading the files: another test of this worker may have read them
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(data_root / "arguana", "test")
    assert "5 judgements name documents not in the corpus" in caplog.text
    assert sum(1 for docs in ds.qrels.values() for d in docs if d not in set(ds.corpus.ids)) == 5


def test_graded_and_judged_non_relevant_are_kept(data_root):
    nf = load_dataset(data_root / "nfcorpus", "test")
    assert {g for docs in nf.qrels.values() for g in docs.values()} == {1, 2}
    cran = load_dataset(data_root / "cranfield", "test")
    assert {g for docs in cran.qrels.values() for g in docs.values()} == {0, 1, 2, 3, 4}


def test_other_splits(data_root):
    assert len(load_dataset(data_root / "scifact", "train").queries) == 809
    assert len(load_dataset(data_root / "nfcorpus", "dev").queries) == 324


def test_scifact_queries_keep_rationale_metadata(data_root):
    ds = load_dataset(data_root / "scifact", "test")
    with_gold = [m for m in ds.queries.metadata if m]
    assert len(with_gold) > 100
    doc_id, evidence = next(iter(with_gold[0].items()))
    assert doc_id in set(ds.corpus.ids) and "sentences" in evidence[0]
