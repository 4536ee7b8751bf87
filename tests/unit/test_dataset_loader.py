"""The one dataset loader: a config node or a folder, read once per content and read again when a file changes."""
from __future__ import annotations

import json
import os

import pytest
from omegaconf import OmegaConf

from retrieval_lab import data
from retrieval_lab.data import beir, forget_datasets, load_dataset
from tests.unit.test_data_errors import HEADER, make_beir


@pytest.fixture
def reads(monkeypatch):
    """Count the reads of files behind load_dataset."""
    forget_datasets()
    calls = []
    real = beir.read_dataset

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "read_dataset", counting)
    yield calls
    forget_datasets()


def node(**values):
    return OmegaConf.create({"name": "toy", "split": "test", "ignore_identical_ids": False, **values})


def test_a_sweep_of_configurations_reads_its_dataset_once(tmp_path, reads):
    folder = make_beir(tmp_path / "toy")
    first = load_dataset(node(path=str(folder)))
    for _ in range(5):  # five more configurations of the sweep, each composing its own node
        assert load_dataset(node(path=str(folder))) is first
    assert load_dataset(folder) is first  # the same folder given as a path: the same dataset
    assert load_dataset(folder, name="other").name == "other"
    assert len(reads) == 2 and first.queries.ids == ["q1", "q2"]


def test_a_changed_file_is_read_again(tmp_path, reads):
    folder = make_beir(tmp_path / "toy")
    before = load_dataset(folder)
    qrels = folder / "qrels" / "test.tsv"
    qrels.write_text(HEADER + "q1\td1\t1\n", encoding="utf-8")  # q2 no longer judged
    after = load_dataset(folder)
    assert len(reads) == 2 and after.queries.ids == ["q1"] and before.queries.ids == ["q1", "q2"]
    stat = qrels.stat()  # same size, later modification time: still a change
    qrels.write_text(HEADER + "q2\td2\t1\n", encoding="utf-8")
    os.utime(qrels, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_dataset(folder).queries.ids == ["q2"] and len(reads) == 3
    (folder / "qrels" / "train.tsv").write_text(HEADER + "q1\td1\t1\n", encoding="utf-8")  # a new file in the folder
    load_dataset(folder)
    assert len(reads) == 4


def test_the_questions_file_and_the_split_are_part_of_the_identity(tmp_path, reads):
    folder = make_beir(tmp_path / "toy")
    (folder / "qrels" / "train.tsv").write_text(HEADER + "q2\td2\t1\n", encoding="utf-8")
    assert load_dataset(folder, "train").queries.ids == ["q2"]
    assert load_dataset(folder, "test").queries.ids == ["q1", "q2"]
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "who purrs?", "evidence": ["cats purr"]}) + "\n")
    one = load_dataset(node(path=str(folder), questions=str(questions)))
    assert one.queries.texts == ["who purrs?"] and len(reads) == 3
    assert load_dataset(node(path=str(folder), questions=str(questions))) is one
    questions.write_text(json.dumps({"question": "who barks?", "evidence": ["dogs bark"]}) + "\n")
    assert load_dataset(node(path=str(folder), questions=str(questions))).queries.texts == ["who barks?"]
    assert len(reads) == 4


def test_only_a_few_datasets_are_kept(tmp_path, reads):
    folders = [make_beir(tmp_path / f"toy{i}") for i in range(data.MEMO_SIZE + 1)]
    for folder in folders:
        load_dataset(folder)
    load_dataset(folders[-1])
    assert len(reads) == data.MEMO_SIZE + 1  # the newest is kept
    load_dataset(folders[0])
    assert len(reads) == data.MEMO_SIZE + 2  # the oldest was dropped


def test_errors_are_not_kept_and_a_node_takes_no_folder_options(tmp_path, reads):
    from retrieval_lab.errors import DataError

    with pytest.raises(DataError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    folder = make_beir(tmp_path / "nowhere")
    assert load_dataset(folder).corpus.ids == ["d1", "d2"]
    with pytest.raises(TypeError, match="split"):
        load_dataset(node(path=str(folder)), "train")
