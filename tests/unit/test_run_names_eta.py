"""A plain run's name says what it changed; the sweep's ETA is the pace measured after the warm-up."""
from __future__ import annotations

import time

from retrieval_lab.sweep.state import JobRecord, SweepContext, progress_line, run_name_of_run


def test_a_plain_run_is_named_by_what_its_command_line_changed():
    overrides = ["dataset=scifact", "dataset.root=/data", "retriever=bm25", "retriever.k1=1.2",
                 "hydra.run.dir=/tmp/x", "tracking.experiment=e", "cache.dir=/c", "+chunking=tokens128"]
    assert run_name_of_run(overrides) == "retriever=bm25 k1=1.2 chunking=tokens128"
    assert run_name_of_run(["dataset.path=/home/me/my_docs/", "dataset.questions=/home/me/q.jsonl",
                            "unit=section"]) == "path=my_docs questions=q.jsonl unit=section"
    assert run_name_of_run([]) == "default"
    assert len(run_name_of_run([f"retriever.k{i}=1" for i in range(100)])) <= 250


def _ctx(total: int, started: float) -> SweepContext:
    return SweepContext("s", "p", "1", "e", "study", "/nowhere", total, started, "v")


def _record(num: int, ended: float, status: str = "finished") -> JobRecord:
    return JobRecord(num, status, None, f"c{num}", "h", ended=ended)


def test_the_eta_leaves_the_first_configuration_s_warm_up_out():
    # 60 configurations; the first took 11 s (loading, encoding), the next two 1 s each: the rest take ~1 s each.
    now = time.time()
    start = now - 13
    records = [_record(0, start + 11), _record(1, start + 12), _record(2, start + 13)]
    line = progress_line(_ctx(60, start), records)
    assert line.endswith("ETA 0:57"), line  # 57 left at 1 s each; counting the warm-up in said 3:42


def test_no_eta_until_it_means_something_and_resumed_configurations_cost_nothing():
    now = time.time()
    records = [_record(0, now - 5, "skipped"), _record(1, now - 4, "skipped"), _record(2, now)]
    assert progress_line(_ctx(10, now - 20), records).endswith("ETA ?")
    records += [_record(3, now + 2), _record(4, now + 4)]
    assert progress_line(_ctx(10, now - 20), records).endswith("ETA 0:10")
    assert progress_line(_ctx(5, now - 20), records).endswith("ETA 0:00")
