"""`retrieval-lab server`: MLflow on a throwaway PostgreSQL cluster, `tracking=server`, restarts, retries.

Real PostgreSQL (Debian's `postgresql`, installed by `make postgres-deps`) and a real MLflow server on 127.0.0.1;
about a minute, most of it server starts; a stale state after a reboot (SIGKILL) is recovered by the printed fix.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from retrieval_lab import tracking
from retrieval_lab.tracking.postgres import ServerError, free_port, pg_bin
from tests.integration.sweep_util import CLI, cli, tiny_beir

try:
    pg_bin("initdb")
    pg_bin("pg_ctl")
    NO_POSTGRES = None
except ServerError as exc:
    NO_POSTGRES = str(exc)

pytestmark = pytest.mark.skipif(
    NO_POSTGRES is not None,
    reason=f"POSTGRESQL NOT INSTALLED, the shared tracking server tests were SKIPPED: {NO_POSTGRES}")


@pytest.fixture()
def workdir():
    # As root, PostgreSQL runs as the `postgres` user, which cannot enter pytest's tmp folders (mode 0700 parents).
    folder = Path(tempfile.mkdtemp(prefix="retrieval-lab-server-test-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run([*CLI, "server", "stop", "--dir", str(folder / "srv")], capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(autouse=True)
def restore_http_env():
    """`tracking.client` sets the HTTP retry defaults in this process's environment: undo it after each test."""
    saved = {key: os.environ.get(key) for key in tracking.HTTP_RETRY_DEFAULTS}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def server(action: str, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli(["server", action, "--dir", str(folder), *extra], cwd=folder.parent, timeout=240)


def uri_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("http://")]
    assert len(lines) == 1, stdout
    return lines[0]


def live_processes() -> dict[int, tuple[int, int, bytes]]:
    """pid -> (parent pid, process group, environment) of every process that is not a zombie."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]), environ)
    return found


def server_processes(folder: Path, state: dict) -> set[int]:
    """The MLflow server's process group, the postmaster and its children, anything started for `folder`."""
    procs = live_processes()
    marker = f"RETRIEVAL_LAB_SERVER_DIR={folder}".encode()
    return {pid for pid, (ppid, pgid, environ) in procs.items()
            if pgid == state["mlflow_pid"] or pid == state["postgres_pid"] or ppid == state["postgres_pid"]
            or marker in environ.split(b"\0")}


def test_server_start_run_restart_stop(workdir, no_env_uri):
    import json

    from mlflow.tracking import MlflowClient

    folder = workdir / "srv"
    port = free_port()
    tiny = tiny_beir(workdir / "tiny")

    started = server("start", folder, "--port", str(port))
    assert started.returncode == 0, started.stderr[-3000:]
    uri = uri_line(started.stdout)
    assert uri == f"http://127.0.0.1:{port}"
    state = json.loads((folder / "state.json").read_text())
    assert (folder / "pgdata" / "PG_VERSION").exists()
    # PostgreSQL listens on loopback only, with no unix socket
    conf = (folder / "pgdata" / "postgresql.conf").read_text()
    assert "listen_addresses = '127.0.0.1'" in conf and "unix_socket_directories = ''" in conf

    status = server("status", folder)
    assert status.returncode == 0 and uri_line(status.stdout) == uri, status.stdout

    again = server("start", folder)
    assert again.returncode == 0 and "already running" in again.stdout and uri_line(again.stdout) == uri
    assert json.loads((folder / "state.json").read_text())["mlflow_pid"] == state["mlflow_pid"]

    run = cli(["run", f"dataset.path={tiny}", "retriever=bm25", "tracking=server",
               f"tracking.server_dir={folder}", "tracking.experiment=teamwork", f"hydra.run.dir={workdir}/hydra"],
              cwd=workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"({uri})" in run.stdout
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("teamwork")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED" and logged.data.metrics["ndcg_at_10"] > 0
    assert "config.yaml" in {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert any((folder / "artifacts").rglob("per_query.csv"))  # artifacts served into the server's root

    # MLFLOW_TRACKING_URI=http://... reaches the same server with the default tracking config
    plain = cli(["run", f"dataset.path={tiny}", "retriever=bm25", "retriever.k1=1.5", "tracking.experiment=teamwork",
                 f"hydra.run.dir={workdir}/hydra2"], cwd=workdir, env_extra={"MLFLOW_TRACKING_URI": uri})
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert len(client.search_runs([experiment.experiment_id])) == 2

    # Stop, and a call made while the server is down waits (HTTP retries) until it is back on the same port
    processes = server_processes(folder, state)
    assert state["mlflow_pid"] in processes and state["postgres_pid"] in processes
    stopped = server("stop", folder)
    assert stopped.returncode == 0 and "MLflow" in stopped.stdout and "PostgreSQL" in stopped.stdout
    assert not processes & set(live_processes()), "server processes left after stop"
    assert not server_processes(folder, state)
    down = server("status", folder)
    assert down.returncode == 1 and "not running" in down.stdout

    restart = {}
    thread = threading.Thread(target=lambda: restart.setdefault("proc", server("start", folder, "--port", str(port))))
    thread.start()
    try:
        # a server client with the lab's retry defaults: the restart (~10 s) falls inside its ~30 s of back-off
        survivor = tracking.client({"uri": uri}).get_run(logged.info.run_id)  # PostgreSQL kept it
    finally:
        thread.join()
    assert restart["proc"].returncode == 0, restart["proc"].stderr[-3000:]
    assert survivor.data.metrics["ndcg_at_10"] == logged.data.metrics["ndcg_at_10"]
    assert len(MlflowClient(uri).search_runs([experiment.experiment_id])) == 2

    state = json.loads((folder / "state.json").read_text())
    stale_server_state_fails_at_once_and_the_printed_fix_restarts_it(workdir, folder, port, tiny)
    state = json.loads((folder / "state.json").read_text())
    processes = server_processes(folder, state)
    assert server("stop", folder).returncode == 0
    assert not processes & set(live_processes())


def test_tracking_server_without_a_started_server_names_the_fix(workdir, no_env_uri):
    tiny = tiny_beir(workdir / "tiny")
    proc = cli(["run", f"dataset.path={tiny}", "retriever=bm25", "tracking=server",
                f"tracking.server_dir={workdir / 'none'}", f"hydra.run.dir={workdir}/hydra"], cwd=workdir)
    assert proc.returncode != 0
    assert f"no tracking server was started in {workdir / 'none'}" in proc.stderr
    assert "retrieval-lab server start" in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_that_stays_down_raises_a_store_error_naming_the_uri(monkeypatch, no_env_uri):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # keep the test short; the default waits ~30 s
    mlflow_client = tracking.client({"uri": uri})
    with pytest.raises(tracking.TrackingStoreError) as err:
        mlflow_client.create_experiment("never")
    message = str(err.value)
    assert uri in message and "stayed down through 1 retries" in message and "retrieval-lab server start" in message


def test_http_retry_defaults_apply_to_servers_only(monkeypatch, no_env_uri, tmp_path):
    for key in tracking.HTTP_RETRY_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    tracking.client({"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    assert not any(key in os.environ for key in tracking.HTTP_RETRY_DEFAULTS)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # the user's own setting wins
    tracking.client({"uri": "http://127.0.0.1:1"})
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == tracking.HTTP_RETRY_DEFAULTS[
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]


def printed_fix(stderr: str) -> list[str]:
    """The command in backquotes on the error's `fix:` line, as a user would copy it (`retrieval-lab` replaced by
    this interpreter running the CLI)."""
    import re
    import shlex

    fix = next(line for line in stderr.splitlines() if line.strip().startswith("fix:"))
    command = shlex.split(re.search(r"`([^`]+)`", fix).group(1))
    assert command[0] == "retrieval-lab", fix
    return command[1:]


def stale_server_state_fails_at_once_and_the_printed_fix_restarts_it(workdir: Path, folder: Path, port: int,
                                                                    tiny: Path) -> None:
    """After a reboot, state.json and postmaster.pid remain while no server process runs (simulated: every process
    killed with SIGKILL, and postmaster.pid naming a live pid that is not PostgreSQL, as a recycled pid would).
    `run tracking=server` says so at once, with the exact --dir and --port; following it recovers the server.
    (A step of the test above: it reuses that test's server, whose first start costs most of its time.)"""
    import json
    import signal
    import time

    state = json.loads((folder / "state.json").read_text())
    for pid in server_processes(folder, state):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # a backend that exited as its postmaster died, between listing and killing
            pass
    deadline = time.time() + 30
    while server_processes(folder, state) and time.time() < deadline:
        time.sleep(0.2)
    assert not server_processes(folder, state)
    pidfile = folder / "pgdata" / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")  # a recycled pid: this test's own

    args = ["run", f"dataset.path={tiny}", "retriever=bm25", "tracking=server", f"tracking.server_dir={folder}",
            "tracking.experiment=stale", f"hydra.run.dir={workdir}/hydra-stale"]
    t0 = time.time()
    failed = cli(args, cwd=workdir)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert time.time() - t0 < 25, "a dead server must be detected at once, not after the HTTP retries"
    assert f"the tracking server recorded in {folder / 'state.json'} is not running" in failed.stderr
    fix = printed_fix(failed.stderr)
    assert fix == ["server", "start", "--dir", str(folder), "--port", str(port)], failed.stderr

    restarted = cli(fix, cwd=workdir, timeout=240)  # exactly as printed
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "recovered a server that had died" in restarted.stdout and "postmaster.pid" in restarted.stdout
    assert uri_line(restarted.stdout) == f"http://127.0.0.1:{port}"
    again = cli(args, cwd=workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"(http://127.0.0.1:{port})" in again.stdout
