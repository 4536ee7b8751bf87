"""The Ray launcher's ray.init arguments and forwarded environment, runs of dead or lost job attempts marked KILLED,
and the once-per-sweep fault hook the launcher tests use (no Ray cluster: those are in
tests/integration/test_launchers.py; the hook in a child process: tests/integration/test_sweep_fault_hook.py)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from retrieval_lab.sweep.ray_launch import forwarded_env, init_arguments
from retrieval_lab.sweep.resume import kill_lost_job_runs, mark_orphans
from retrieval_lab.sweep.state import SweepContext

RAY_CFG = {"init": {"address": None}, "local": {"num_cpus": 2, "include_dashboard": False},
           "remote": {"num_cpus": 1}}
ENV = {"RETRIEVAL_LAB_SWEEP_PARENT_RUN_ID": "abc", "RETRIEVAL_LAB_CACHE": "/shared/cache",
       "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin", "HOME": "/root"}


def test_a_cluster_for_the_sweep_gets_the_local_arguments_and_the_sweep_environment():
    args = init_arguments(OmegaConf.create(RAY_CFG), ENV)
    assert args["address"] == "local"  # never joins a cluster `ray start` left on this machine
    assert args["num_cpus"] == 2 and args["include_dashboard"] is False
    assert args["runtime_env"]["env_vars"] == {k: v for k, v in ENV.items() if k not in ("PATH", "HOME")}


def test_joining_a_cluster_drops_the_local_arguments_and_keeps_the_users_runtime_env():
    cfg = OmegaConf.create({**RAY_CFG, "init": {"address": "head:6379",
                                                "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "0", "X": 1},
                                                                "working_dir": "."}}})
    args = init_arguments(cfg, ENV)
    assert args["address"] == "head:6379" and "num_cpus" not in args
    assert args["runtime_env"]["working_dir"] == "."
    env = args["runtime_env"]["env_vars"]
    assert env["HF_HUB_OFFLINE"] == "0" and env["X"] == "1"  # the user's values win
    assert env["RETRIEVAL_LAB_SWEEP_PARENT_RUN_ID"] == "abc"


def test_forwarded_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", "/data")
    assert forwarded_env()["RETRIEVAL_LAB_DATA"] == "/data"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its schema costs seconds); an experiment per test."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def _running(client, experiment_id, **tags):
    return client.create_run(experiment_id, tags={k: str(v) for k, v in tags.items()}).info.run_id


def test_a_retried_job_kills_its_earlier_attempt_on_any_host_and_nothing_else(store):
    _, client = store
    exp = client.create_experiment("retried")
    # pid 1 is alive and the hosts are not this one: only the attempt rule can end these
    earlier = _running(client, exp, sweep_id="s1", job_num=2, config_hash="h", host="node-b", pid=1)
    other_job = _running(client, exp, sweep_id="s1", job_num=3, config_hash="h", host="node-b", pid=1)
    other_sweep = _running(client, exp, sweep_id="s0", job_num=2, config_hash="h", host="node-b", pid=1)
    assert mark_orphans(client, exp, "h", attempt_of=("s1", 2)) == [earlier]
    assert client.get_run(earlier).info.status == "KILLED"
    assert client.get_run(earlier).data.tags["killed_reason"].startswith("an earlier attempt of job 2")
    assert {client.get_run(r).info.status for r in (other_job, other_sweep)} == {"RUNNING"}


def test_runs_of_lost_jobs_are_killed(store, tmp_path):
    uri, client = store
    exp = client.create_experiment("lost")
    lost = _running(client, exp, sweep_id="s1", job_num=1, host="node-b", pid=1)
    alive = _running(client, exp, sweep_id="s1", job_num=0, host="node-b", pid=1)
    ctx = SweepContext(sweep_id="s1", parent_run_id="p", experiment_id=exp, experiment="e", study="adhoc",
                       state_dir=str(tmp_path), total=2, started=0.0, source_revision="v",
                       tracking_uri=uri)
    assert kill_lost_job_runs(ctx, [1], "its Ray task was lost") == [lost]
    assert client.get_run(lost).data.tags["killed_reason"] == "its Ray task was lost"
    assert client.get_run(alive).info.status == "RUNNING"
