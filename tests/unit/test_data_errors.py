"""Every malformed input gets an error naming the file, the line and the fix."""
from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from retrieval_lab.data import load_dataset
from retrieval_lab.errors import DataError

HEADER = "query-id\tcorpus-id\tscore\n"


def make_beir(folder: Path, corpus=None, queries=None, qrels=None, split="test", gz=False) -> Path:
    corpus = corpus if corpus is not None else [
        {"_id": "d1", "title": "Cats", "text": "cats purr"},
        {"_id": "d2", "title": "Dogs", "text": "dogs bark"},
    ]
    queries = queries if queries is not None else [{"_id": "q1", "text": "purr"}, {"_id": "q2", "text": "bark"}]
    qrels = qrels if qrels is not None else HEADER + "q1\td1\t1\nq2\td2\t2\n"
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in corpus)
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        (folder / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in queries), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return folder


def test_valid_folder_loads_with_graded_qrels(tmp_path):
    ds = load_dataset(make_beir(tmp_path / "toy"))
    assert ds.corpus.ids == ["d1", "d2"] and ds.queries.ids == ["q1", "q2"]
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_gzipped_corpus_loads(tmp_path):
    ds = load_dataset(make_beir(tmp_path / "toy", gz=True))
    assert len(ds.corpus) == 2


def test_split_selects_its_queries(tmp_path):
    folder = make_beir(tmp_path / "toy", qrels=HEADER + "q2\td2\t1\n", split="train")
    make_beir(folder)  # also a test split
    assert load_dataset(folder, split="train").queries.ids == ["q2"]


@pytest.mark.parametrize("line, message", [
    ('{"_id": "d3", "text": ', "malformed JSON"),
    ('{"title": "x", "text": "y"}', "missing field '_id'"),
    ('{"_id": "d3", "title": "x"}', "missing field 'text'"),
    ('["d3", "text"]', "expected a JSON object"),
    ('{"_id": "d1", "text": "again"}', "duplicate _id 'd1' (first seen on line 1)"),
    ('{"_id": "d3", "text": 5}', "'text' must be a string"),
])
def test_bad_corpus_line_names_file_and_line(tmp_path, line, message):
    corpus = [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}, line]
    folder = make_beir(tmp_path / "toy", corpus=corpus)
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert f"corpus.jsonl:3: {message}" in str(err.value)


def test_bad_query_line_is_reported(tmp_path):
    folder = make_beir(tmp_path / "toy", queries=[{"_id": "q1", "text": "a"}, {"_id": "q1", "text": "b"}])
    with pytest.raises(DataError, match=r"queries.jsonl:2: duplicate _id 'q1'"):
        load_dataset(folder)


def test_invalid_utf8_names_the_line(tmp_path):
    folder = make_beir(tmp_path / "toy")
    with open(folder / "corpus.jsonl", "ab") as fh:
        fh.write(b'{"_id": "d3", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"corpus.jsonl:3: invalid UTF-8.*\n  fix: re-encode"):
        load_dataset(folder)


def test_truncated_gzip_is_reported(tmp_path):
    folder = make_beir(tmp_path / "toy", gz=True)
    data = (folder / "corpus.jsonl.gz").read_bytes()
    (folder / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"corpus.jsonl.gz: cannot read file"):
        load_dataset(folder)


@pytest.mark.parametrize("qrels, message", [
    ("qid\tdocid\tscore\nq1\td1\t1\n", r"test.tsv:1: wrong header"),
    (HEADER + "q1\td1\n", r"test.tsv:2: expected 3 tab-separated columns, found 2"),
    (HEADER + "q1\td1\t1\textra\n", r"test.tsv:2: expected 3 tab-separated columns, found 4"),
    (HEADER + "q1\td1\t1\nq2\td2\thigh\n", r"test.tsv:3: score 'high' is not an integer"),
    (HEADER, r"test.tsv: the qrels file has a header but no judgements"),
    ("", r"test.tsv:1: the qrels file is empty"),
])
def test_bad_qrels(tmp_path, qrels, message):
    with pytest.raises(DataError, match=message):
        load_dataset(make_beir(tmp_path / "toy", qrels=qrels))


def test_empty_corpus(tmp_path):
    with pytest.raises(DataError, match=r"corpus.jsonl: the corpus is empty"):
        load_dataset(make_beir(tmp_path / "toy", corpus=[]))


def test_missing_file_and_folder(tmp_path):
    folder = make_beir(tmp_path / "toy")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(DataError, match=r"queries.jsonl: file not found"):
        load_dataset(folder)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(DataError, match=r"corpus.jsonl: file not found"):
        load_dataset(folder)
    with pytest.raises(DataError, match=r"dataset folder not found\n  fix: set dataset.root"):
        load_dataset(tmp_path / "nowhere")


def test_missing_split_lists_existing_ones(tmp_path):
    folder = make_beir(tmp_path / "toy", split="train")
    make_beir(folder, split="dev")
    with pytest.raises(DataError, match=r"split 'test' not found; splits here: dev, train"):
        load_dataset(folder, split="test")


def test_qrels_to_unknown_docs_warn_and_still_count(tmp_path, caplog):
    folder = make_beir(tmp_path / "toy", qrels=HEADER + "q1\td1\t1\nq1\tghost\t1\nq2\td2\t1\nq9\td2\t1\n")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(folder)
    text = caplog.text
    assert "1 judgements name documents not in the corpus" in text
    assert "1 judged queries are not in queries.jsonl" in text
    assert ds.qrels["q1"] == {"d1": 1, "ghost": 1}  # kept: recall of q1 can reach only 1/2
    assert "q9" not in ds.qrels


def test_judged_non_relevant_rows_are_kept(tmp_path):
    ds = load_dataset(make_beir(tmp_path / "toy", qrels=HEADER + "q1\td1\t1\nq1\td2\t0\n"))
    assert ds.qrels["q1"] == {"d1": 1, "d2": 0}


def test_fingerprint_follows_content(tmp_path):
    a = load_dataset(make_beir(tmp_path / "a"))
    b = load_dataset(make_beir(tmp_path / "b", gz=True))
    c = load_dataset(make_beir(tmp_path / "c", corpus=[{"_id": "d1", "text": "other"}, {"_id": "d2", "text": "b"}]))
    assert a.fingerprint == b.fingerprint != c.fingerprint
