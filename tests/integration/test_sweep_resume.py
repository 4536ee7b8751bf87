"""`retrieval-lab sweep`: parent/child MLflow runs, leaderboard, failures, resume after SIGKILL, joblib workers.

On a tiny hand-made BEIR set so that each sweep is a few seconds (mostly process start-up).
"""
from __future__ import annotations

import collections
import re
import signal

import pytest

from tests.integration.sweep_util import runs, sweep, tiny_beir

GRID = ["retriever.k1=0.5,1.5", "retriever.b=0.2,0.9"]  # 4 configurations


@pytest.fixture()
def tiny(tmp_path):
    return tiny_beir(tmp_path / "tiny")


def base_args(tiny):
    return [*GRID, f"dataset.path={tiny}", "tracking.experiment=sweeptest"]


def test_parent_and_children_with_tags_artifacts_and_leaderboard(tiny, tmp_path, mlflow_uri):
    proc = sweep(base_args(tiny), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^\[4/4, \d+:\d\d elapsed, ETA 0:00\] ", proc.stdout, re.M), proc.stdout  # progress
    client, parents = runs(mlflow_uri, "sweeptest", "sweep")
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["study"] == "adhoc" and tags["git_commit"] == "test-code-v1" and len(tags["dataset_hash"]) == 16
    assert tags["sweep_id"]
    _, children = runs(mlflow_uri, "sweeptest", "config")
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.tags["sweep_id"] for c in children} == {tags["sweep_id"]}
    assert len({c.data.tags["config_hash"] for c in children}) == 4
    assert {c.info.run_name for c in children} == {"k1=0.5 b=0.2", "k1=0.5 b=0.9", "k1=1.5 b=0.2", "k1=1.5 b=0.9"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"config.yaml", "per_query.csv", "run.trec"} <= {a.path for a in client.list_artifacts(child.info.run_id)}
        assert child.data.params["retriever.k1"] in ("0.5", "1.5")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "leaderboard.md", "quality_vs_latency.png"} <= artifacts
    assert "metric_vs_chunk_size.png" not in artifacts  # no chunk size in this sweep: no plot
    board = client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path / "dl"))
    lines = open(board).read().splitlines()
    assert lines[0].startswith("rank,run,ndcg_at_10,delta,delta_95_low,delta_95_high,p_best") and len(lines) == 5
    second = dict(zip(lines[0].split(","), lines[2].split(",")))  # the runner-up: its paired interval holds its delta
    assert float(second["delta_95_low"]) <= float(second["delta"]) <= float(second["delta_95_high"])
    md = open(client.download_artifacts(parent.info.run_id, "leaderboard.md", str(tmp_path / "dl"))).read()
    assert "power: with these" in md and "detectable at 80% power" in md
    assert parent.data.metrics["detectable_difference"] > 0
    assert parent.data.metrics["configs_done"] == 4 and parent.data.metrics["configs_failed"] == 0
    best = max(c.data.metrics["ndcg_at_10"] for c in children)
    assert parent.data.metrics["best_ndcg_at_10"] == best


def test_a_failing_config_keeps_the_others_and_the_parent_ends_failed(tiny, tmp_path, mlflow_uri):
    proc = sweep(["retriever.k1=0.9,-1", f"dataset.path={tiny}", "tracking.experiment=sweeptest"], tmp_path)
    assert proc.returncode != 0
    assert "retriever.k1" in proc.stderr  # the failing config names its key
    _, (parent,) = runs(mlflow_uri, "sweeptest", "sweep")
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["configs_failed"] == 1
    _, children = runs(mlflow_uri, "sweeptest", "config")
    status = {c.info.run_name: c.info.status for c in children}
    assert status == {"k1=0.9": "FINISHED", "k1=-1": "FAILED"}
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "k1" in failed.data.tags["error"]
    # Re-running resumes the finished config and fails the bad one again: no duplicate FINISHED run.
    proc = sweep(["retriever.k1=0.9,-1", f"dataset.path={tiny}", "tracking.experiment=sweeptest"], tmp_path)
    assert proc.returncode != 0 and "1 resumed" in proc.stdout
    _, children = runs(mlflow_uri, "sweeptest", "config")
    assert sum(c.info.status == "FINISHED" for c in children) == 1


# point:n -> configurations FINISHED before the kill (4 configs, sequential launcher: same process)
KILL_POINTS = {"job_start:2": 1, "child_running:3": 2, "child_finished:2": 2, "sweep_end:1": 4}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_skips_finished_and_never_duplicates(point, tiny, tmp_path, mlflow_uri):
    killed = sweep(base_args(tiny), tmp_path, env_extra={"RETRIEVAL_LAB_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    _, children = runs(mlflow_uri, "sweeptest", "config")
    assert sum(c.info.status == "FINISHED" for c in children) == KILL_POINTS[point]
    _, (first_parent,) = runs(mlflow_uri, "sweeptest", "sweep")
    assert first_parent.info.status == "RUNNING"  # what a SIGKILL leaves behind

    resumed = sweep(base_args(tiny), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{KILL_POINTS[point]} resumed" in resumed.stdout or KILL_POINTS[point] == 0
    client, parents = runs(mlflow_uri, "sweeptest", "sweep")
    status = {p.info.run_id: p.info.status for p in parents}
    assert status[first_parent.info.run_id] == "KILLED"
    assert sorted(status.values()) == ["FINISHED", "KILLED"]
    _, children = runs(mlflow_uri, "sweeptest", "config")
    finished = collections.Counter(c.data.tags["config_hash"] for c in children if c.info.status == "FINISHED")
    assert len(finished) == 4 and set(finished.values()) == {1}  # every config once, none twice
    assert not [c for c in children if c.info.status == "RUNNING"]
    orphans = [c for c in children if c.info.status == "KILLED"]
    assert len(orphans) == (1 if point.startswith("child_running") else 0)
    new_parent = next(p for p in parents if p.info.status == "FINISHED")
    assert new_parent.data.metrics["configs_resumed"] == KILL_POINTS[point]
    assert new_parent.data.metrics["configs_done"] == 4


def test_joblib_workers_share_a_fresh_store(tiny, tmp_path, mlflow_uri):
    proc = sweep([*base_args(tiny), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (parent,) = runs(mlflow_uri, "sweeptest", "sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["launcher"] == "joblib"
    _, children = runs(mlflow_uri, "sweeptest", "config")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags["pid"] for c in children}) >= 2  # ran in more than one worker process
