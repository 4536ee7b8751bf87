from __future__ import annotations

import pytest

from retrieval_lab.errors import DataError
from retrieval_lab.types import Qrels, Run


def test_run_round_trip_keeps_order_and_scores(tmp_path):
    run = Run({"q1": [("d2", 2.5), ("d1", 2.5), ("d3", -1.0)], "q2": [("d9", 0.1)]})
    run.to_trec(tmp_path / "run.trec")
    assert Run.from_trec(tmp_path / "run.trec") == run
    first = (tmp_path / "run.trec").read_text().splitlines()[0]
    assert first == "q1 Q0 d2 1 2.500000 retrieval-lab"


def test_qrels_round_trip(tmp_path):
    qrels = Qrels({"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}})
    qrels.to_trec(tmp_path / "qrels.txt")
    assert Qrels.from_trec(tmp_path / "qrels.txt") == qrels


def test_malformed_lines_are_located(tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 two 0.4 tag\n")
    with pytest.raises(DataError, match=r"run.trec:2: rank must be an integer"):
        Run.from_trec(tmp_path / "run.trec")
    (tmp_path / "qrels.txt").write_text("q1 0 d1\n")
    with pytest.raises(DataError, match=r"qrels.txt:1: expected 4 columns"):
        Qrels.from_trec(tmp_path / "qrels.txt")
