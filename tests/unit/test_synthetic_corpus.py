"""Synthetic corpora: the word model fitted on a corpus, deterministic sampling by seed, topics kept, a BEIR folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval_lab.data import synthetic_corpus as sc
from retrieval_lab.data import load_dataset
from retrieval_lab.errors import DataError, LabError
from retrieval_lab.types import Corpus, Queries

CORPUS = Corpus(["a", "b", "c"], ["Cats", "Dogs", ""],
                ["cats purr and cats sleep", "dogs bark and dogs run fast", "fish swim and fish swim"])
QUERIES = Queries(["q1", "q2"], ["do cats purr", "fish"])


def test_fit_keeps_words_frequencies_documents_and_query_lengths():
    model = sc.fit(CORPUS, QUERIES)
    words = [w for text in CORPUS.texts + CORPUS.titles for w in text.split()]
    assert sorted(model.vocabulary) == sorted(set(words))
    counts = [words.count(w) for w in model.vocabulary]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    np.testing.assert_allclose(np.diff(np.concatenate([[0], model.unigram_cdf])), np.array(counts) / len(words))
    second = model.text_words[model.text_offsets[1]:model.text_offsets[2]]
    assert " ".join(model.vocabulary[second]) == CORPUS.texts[1]
    assert model.title_offsets[3] - model.title_offsets[2] == 0  # the empty title
    assert sorted(model.query_lengths.tolist()) == [1, 3] and model.documents == 3


def read_lines(folder):
    return (folder / "corpus.jsonl").read_text().splitlines()


def test_same_seed_same_corpus_and_a_smaller_corpus_is_a_prefix(tmp_path, monkeypatch):
    monkeypatch.setattr(sc, "BLOCK", 4)  # several random streams in a small corpus
    model = sc.fit(CORPUS, QUERIES)
    sc.write_corpus(model, tmp_path / "one", 10, queries=3, seed=7)
    sc.write_corpus(model, tmp_path / "two", 10, queries=3, seed=7)
    sc.write_corpus(model, tmp_path / "small", 6, queries=3, seed=7)
    sc.write_corpus(model, tmp_path / "other", 10, queries=3, seed=8)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert read_lines(tmp_path / "small") == read_lines(tmp_path / "one")[:6]
    assert read_lines(tmp_path / "other") != read_lines(tmp_path / "one")


def test_documents_keep_their_seeds_words_and_lengths(monkeypatch):
    """With every word topical and no second seed, a document is its seed's words re-drawn, at its seed's length."""
    monkeypatch.setattr(sc, "SECOND_SEED", 0.0)
    model = sc.fit(CORPUS)
    text_ids, text_off, _, _ = sc.documents(model, 0, 200, seed=1, topic_weight=1.0)
    own = [set(t.split()) for t in CORPUS.texts]
    lengths = {len(t.split()) for t in CORPUS.texts}
    for i in range(200):
        words = model.vocabulary[text_ids[text_off[i]:text_off[i + 1]]].tolist()
        assert len(words) in lengths
        assert any(set(words) <= seed for seed in own)
    mixed, mixed_off, _, _ = sc.documents(model, 0, 200, seed=1, topic_weight=0.0)  # corpus-wide draws only
    assert sum(not any(set(model.vocabulary[mixed[mixed_off[i]:mixed_off[i + 1]]]) <= s for s in own)
               for i in range(200)) > 150


def test_writes_a_beir_folder_with_known_item_queries(tmp_path):
    report = sc.write_corpus(sc.fit(CORPUS, QUERIES), tmp_path / "syn", 50, queries=10, seed=0)
    assert report.docs == 50 and report.queries == 10 and "dataset.path=" in report.lines()[1]
    dataset = load_dataset(tmp_path / "syn")
    assert len(dataset.corpus) == 50 and len(dataset.queries) == 10
    texts = dict(zip(dataset.corpus.ids, dataset.corpus.texts))
    for qid, text in zip(dataset.queries.ids, dataset.queries.texts):
        (target,) = dataset.qrels[qid]
        assert set(text.split()) <= set(texts[target].split())  # the query's words are its document's
    info = json.loads((tmp_path / "syn" / "synthetic.json").read_text())
    assert info["source_corpus"] == CORPUS.fingerprint and info["docs"] == 50
    assert not (tmp_path / "syn" / "corpus.jsonl.partial").exists()


def test_refuses_to_overwrite_and_bad_sizes(tmp_path):
    model = sc.fit(CORPUS)
    sc.write_corpus(model, tmp_path / "syn", 5)
    with pytest.raises(DataError, match="corpus.jsonl: already exists"):
        sc.write_corpus(model, tmp_path / "syn", 5)
    with pytest.raises(LabError, match="--docs must be positive"):
        sc.write_corpus(model, tmp_path / "x", 0)
    with pytest.raises(LabError, match="--topic-weight"):
        sc.write_corpus(model, tmp_path / "x", 5, topic_weight=1.5)


def test_cli_writes_under_the_data_root(tmp_path, capsys):
    from retrieval_lab.cli import main

    sc.write_corpus(sc.fit(CORPUS, QUERIES), tmp_path / "source", 30, queries=5)  # any BEIR folder to fit on
    assert main(["data", "synth-corpus", "--like", "source", "--docs", "40", "--out", "big", "--queries", "4",
                 "--root", str(tmp_path)]) == 0
    assert "wrote 40 documents" in capsys.readouterr().out
    assert len(load_dataset(tmp_path / "big").corpus) == 40
    assert main(["data", "synth-corpus", "--like", str(tmp_path / "source"), "--docs", "5", "--out", "big",
                 "--root", str(tmp_path)]) != 0  # refuses to overwrite: an error, not a traceback
