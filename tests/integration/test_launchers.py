"""Sweeps through the Ray and submitit launchers, logging to the PostgreSQL-backed tracking server; the stage cache
shared by workers; a worker killed mid-sweep; the tracking server restarted mid-sweep.

One server and one Ray cluster (`ray start --head`, 2 CPUs) serve the whole module; one sweep starts its own
cluster. BM25 on Cranfield (seconds per configuration) and WordLlama for the shared embedding; most of the time is
process start-up (Ray workers, submitit jobs).
"""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from retrieval_lab.tracking.postgres import ServerError, free_port, pg_bin
from tests.integration.sweep_util import CLI, cli, runs, sweep

try:
    pg_bin("initdb")
    pg_bin("pg_ctl")
    NO_POSTGRES = None
except ServerError as exc:
    NO_POSTGRES = str(exc)

pytestmark = pytest.mark.skipif(
    NO_POSTGRES is not None,
    reason=f"POSTGRESQL NOT INSTALLED, the launcher tests (they log to the tracking server) were SKIPPED: "
           f"{NO_POSTGRES}")

RAY = str(Path(sys.executable).parent / "ray")
K1_GRID = "retriever.k1=0.6,0.9,1.2"  # 3 BM25 configurations


@dataclass
class Server:
    folder: Path
    uri: str
    port: int


@pytest.fixture(scope="module")
def workdir():
    # As root, PostgreSQL runs as the `postgres` user, which cannot enter pytest's tmp folders (mode 0700 parents).
    folder = Path(tempfile.mkdtemp(prefix="retrieval-lab-launchers-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(workdir):
    folder, port = workdir / "srv", free_port()
    started = cli(["server", "start", "--dir", str(folder), "--port", str(port)], cwd=workdir, timeout=240)
    assert started.returncode == 0, started.stderr[-3000:]
    yield Server(folder, f"http://127.0.0.1:{port}", port)
    cli(["server", "stop", "--dir", str(folder)], cwd=workdir, timeout=240)


@pytest.fixture(scope="module")
def ray_address():
    """A Ray cluster as a team would run one (`ray start --head`), in a process group of its own to end it by."""
    temp = Path(tempfile.mkdtemp(prefix="rl-ray-"))  # short: Ray's unix sockets live under it
    log_path = temp / "ray-start.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([RAY, "start", "--head", "--block", "--num-cpus", "2", "--include-dashboard", "false",
                                 "--port", str(free_port()), "--temp-dir", str(temp), "--disable-usage-stats"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (found := re.search(r"ray start --address='([^']+)'", log_path.read_text())):
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        yield found.group(1)  # the node's own IP and the port: what `ray start` tells other nodes to join
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # `ray start --block` ignores SIGINT and SIGTERM for many seconds
        proc.wait(30)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def joined(address: str) -> list[str]:
    """Overrides that run the sweep on the module's cluster (with RAY_ENV in the environment)."""
    return ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"]


RAY_ENV = {"RAY_AUTH_MODE": "token"}  # `ray start` protects the cluster with the token in ~/.ray/auth_token


def tracked(server: Server, experiment: str, data_root: Path) -> list[str]:
    return ["dataset=cranfield", f"dataset.root={data_root}", "tracking=server",
            f"tracking.server_dir={server.folder}", f"tracking.experiment={experiment}"]


def sweep_state(server: Server, experiment: str):
    """(parents, children) of an experiment, as the server's store holds them."""
    _, parents = runs(server.uri, experiment, "sweep")
    _, children = runs(server.uri, experiment, "config")
    return parents, children


def finished_once(children, count: int) -> None:
    """Every configuration FINISHED exactly once, none still RUNNING."""
    finished = collections.Counter(c.data.tags["config_hash"] for c in children if c.info.status == "FINISHED")
    assert len(finished) == count and set(finished.values()) == {1}, finished
    assert not [c for c in children if c.info.status == "RUNNING"]


def store_rows(server: Server, experiment: str) -> dict[str, str]:
    """run id -> status, read from PostgreSQL itself (not through MLflow's server)."""
    import psycopg

    creds = json.loads((server.folder / "credentials.json").read_text())
    state = json.loads((server.folder / "state.json").read_text())
    with psycopg.connect(host="127.0.0.1", port=state["postgres_port"], user=creds["user"],
                         password=creds["password"], dbname=creds["database"]) as conn:
        rows = conn.execute("SELECT r.run_uuid, r.status FROM runs r JOIN experiments e ON "
                            "r.experiment_id = e.experiment_id WHERE e.name = %s", (experiment,)).fetchall()
    return dict(rows)


def leftover_processes(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (e.g. the sweep's parent run id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes() and \
                        (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def check_layout(server: Server, experiment: str, launcher: str, configs: int, tmp_path: Path,
                 failed_before: int = 0):
    """One FINISHED parent with the leaderboard (after `failed_before` sweeps that failed before starting any job);
    every child FINISHED under it, run in another process than the sweep's; every run in PostgreSQL."""
    parents, children = sweep_state(server, experiment)
    failed = [p for p in parents if p.info.status in ("FAILED", "KILLED")]
    assert len(failed) == failed_before, [p.info.status for p in parents]
    (parent,) = [p for p in parents if p.info.run_id not in {f.info.run_id for f in failed}]
    assert parent.info.status == "FINISHED" and parent.data.tags["launcher"] == launcher
    assert len(children) == configs
    finished_once(children, configs)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent.data.tags["pid"] not in {c.data.tags["pid"] for c in children}  # ran in workers
    client, _ = runs(server.uri, experiment)
    board = client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path / "dl"))
    assert len(Path(board).read_text().splitlines()) == configs + 1
    assert store_rows(server, experiment) == {r.info.run_id: r.info.status for r in [*failed, parent, *children]}
    return parent, children


def test_an_unreachable_ray_cluster_fails_in_seconds_and_the_printed_fix_sweeps_on_a_cluster_started_for_it(
        server, data_root, tmp_path):
    """A cluster address where nothing answers: Ray itself retries it for minutes (killed at 300 s before). The
    sweep stops within seconds, names the address and the fix, and its parent run ends FAILED. Following the fix
    (no address: a cluster started on this machine for the sweep): two configurations needing the same WordLlama
    embedding of Cranfield, in two Ray workers sharing an empty cache; one computes it, the other finds it (the
    cache's per-key lock)."""
    cache = tmp_path / "cache"
    args = [*tracked(server, "ray_local", data_root), "retriever=dense", "embedder=wordllama", "index=flat,hnsw",
            f"cache.dir={cache}", "hydra/launcher=ray", "hydra.launcher.ray.local.num_cpus=2"]
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.time()
    failed = sweep([*args, f"hydra.launcher.ray.init.address={address}"], tmp_path, timeout=120)
    assert time.time() - t0 < 60, "an unreachable cluster must fail within about a minute"
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert f"cannot join the Ray cluster at {address}" in failed.stderr and "nothing answers on" in failed.stderr
    assert "hydra.launcher.ray.init.address=null" in failed.stderr

    proc = sweep([*args, "hydra.launcher.ray.init.address=null"], tmp_path)  # the printed fix, followed
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(re.findall(r"^\[\d/2, .*  done$", proc.stdout, re.M)) == 2, proc.stdout  # each config's line
    assert "View run" not in proc.stdout  # MLflow's own line per run ended on a server: suppressed
    parent, children = check_layout(server, "ray_local", "ray", 2, tmp_path, failed_before=1)
    assert len({c.data.tags["pid"] for c in children}) == 2  # two workers
    hits = sorted(c.data.metrics["dense_embeddings_cache_hit"] for c in children)
    assert hits == [0.0, 1.0]  # one computed the passages' embedding, the other found it
    manifests = [json.loads(p.read_text()) for p in (cache / "embeddings").glob("*/*/manifest.json")]
    passages = [m for m in manifests if m["inputs"]["kind"] == "passage"]
    assert len(passages) == 1 and passages[0]["meta"]["count"] == 1400
    assert not leftover_processes(parent.info.run_id), "processes of the sweep's Ray cluster left running"


def test_submitit_local_sweep_lands_in_postgres(server, data_root, tmp_path):
    proc = sweep([*tracked(server, "submitit", data_root), "retriever.k1=0.6,1.2", "hydra/launcher=submitit_local"],
                 tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, children = check_layout(server, "submitit", "submitit_local", 2, tmp_path)
    assert len({c.data.tags["pid"] for c in children}) == 2  # one process per job


def test_a_worker_killed_mid_sweep_loses_its_config_and_the_same_command_resumes(server, ray_address, data_root,
                                                                                  tmp_path):
    args = [*tracked(server, "worker_killed", data_root), K1_GRID, *joined(ray_address),
            "hydra.launcher.ray.remote.max_retries=0"]
    fault = {"RETRIEVAL_LAB_FAULT": "child_running:1", "RETRIEVAL_LAB_FAULT_ONCE": str(tmp_path / "killed-once")}
    killed = sweep(args, tmp_path, env_extra={**RAY_ENV, **fault})
    assert killed.returncode == 1, killed.stderr[-3000:]
    assert "1 configuration(s) did not finish" in killed.stderr and "run the same command again" in killed.stderr
    assert "Traceback" not in killed.stderr
    (parent,), children = sweep_state(server, "worker_killed")
    assert parent.info.status == "KILLED"
    status = collections.Counter(c.info.status for c in children)
    assert status == {"FINISHED": 2, "KILLED": 1}  # the lost one is marked, not left RUNNING

    resumed = sweep(args, tmp_path, env_extra=RAY_ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "2 resumed" in resumed.stdout
    parents, children = sweep_state(server, "worker_killed")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
    finished_once(children, 3)


def test_a_sweep_waits_through_a_server_restart_and_a_killed_worker_and_loses_nothing(server, ray_address,
                                                                                      data_root, tmp_path):
    """Both jobs open their run and wait; the server stops; they go on (one is killed there, and Ray runs it again
    in a new worker) while the server is down, so their calls wait in the HTTP retries; the server starts again."""
    hold = tmp_path / "hold"
    hold.mkdir()
    args = [*tracked(server, "server_restart", data_root), "retriever.k1=0.6,1.2", *joined(ray_address)]
    env = {**os.environ, **RAY_ENV, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1",
           "RETRIEVAL_LAB_HOLD": f"child_running:{hold}", "RETRIEVAL_LAB_FAULT": "child_running:1",
           "RETRIEVAL_LAB_FAULT_ONCE": str(tmp_path / "killed-once")}
    proc = subprocess.Popen([*CLI, "sweep", *args, f"hydra.sweep.dir={tmp_path / 'multirun'}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while len(list(hold.glob("held-*"))) < 2:  # both jobs opened their run and wait
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)
        stopped = cli(["server", "stop", "--dir", str(server.folder)], cwd=tmp_path, timeout=240)
        assert stopped.returncode == 0, stopped.stderr
        (hold / "release").touch()
        restarted = cli(["server", "start", "--dir", str(server.folder), "--port", str(server.port)], cwd=tmp_path,
                        timeout=240)
        assert restarted.returncode == 0, restarted.stderr[-3000:]
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert (tmp_path / "killed-once").exists()  # a worker did die
    (parent,), children = sweep_state(server, "server_restart")
    assert parent.info.status == "FINISHED"
    finished_once(children, 2)
    (dead,) = [c for c in children if c.info.status == "KILLED"]  # the dead attempt, marked by Ray's retry of it
    assert dead.data.tags["killed_reason"].startswith("an earlier attempt of job")
    assert store_rows(server, "server_restart") == {r.info.run_id: r.info.status for r in [parent, *children]}
