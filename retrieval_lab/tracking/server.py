"""A team's MLflow tracking server on a throwaway PostgreSQL cluster (`retrieval-lab server start|stop|status`).

Everything lives under one folder (default `mlruns/server/`):
  pgdata/            the PostgreSQL cluster (`initdb`), TCP on 127.0.0.1 only, no unix socket, password auth
  artifacts/         the artifact root, served by MLflow itself (clients upload over HTTP)
  logs/              postgres.log and mlflow.log
  credentials.json   the database role's password (mode 0600; never on a command line)
  state.json         written by `start`, removed by `stop`: the tracking URI `tracking=server` reads, and the pids

The cluster itself: `tracking.postgres`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from retrieval_lab.tracking.postgres import (ServerError, alive, credentials, free_port, init_cluster,
                                             is_postmaster, postmaster_pid, start_postgres, stop_postgres)

DEFAULT_DIR = Path("mlruns") / "server"
DEFAULT_PORT = 5000
STATE_FILE = "state.json"
START_TIMEOUT_S = 180.0   # the first start creates MLflow's schema in PostgreSQL: ~30 s on 2 cores


def server_dir(value: str | os.PathLike | None = None) -> Path:
    return Path(value or DEFAULT_DIR).expanduser().resolve()


def read_state(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServerError(f"{folder / STATE_FILE} is unreadable ({exc}): run `retrieval-lab server stop --dir "
                          f"{folder}` and start it again") from None


def server_uri(folder: str | os.PathLike | None = None) -> str:
    """The tracking URI of the server `start` left running in `folder` (what `tracking=server` logs to)."""
    path = server_dir(folder)
    state = read_state(path)
    if state is None:
        raise ServerError(f"tracking=server: no tracking server was started in {path} (no {STATE_FILE})\n"
                          f"  fix: run `{start_command(path)}`, or set tracking.server_dir to the "
                          "folder a running server uses, or tracking.uri=http://host:port for a server elsewhere")
    if not running(path, state):  # left by a server that died (a reboot, a kill): say so now, not after retries
        raise ServerError(f"tracking=server: the tracking server recorded in {path / STATE_FILE} is not running "
                          f"(MLflow pid {state.get('mlflow_pid')} is gone and nothing answers {state['uri']})\n"
                          f"  fix: run `{start_command(path, state.get('port'))}` (it restarts the server with "
                          "its data on the same port), then run this command again")
    return state["uri"]


def start_command(folder: Path, port: int | None = None) -> str:
    """The exact `server start` that (re)starts the server of `folder`: its --dir, and its --port when known."""
    return f"retrieval-lab server start --dir {folder}" + (f" --port {port}" if port else "")


def running(folder: Path, state: dict) -> bool:
    """The server `state` records is up: its MLflow process lives (this pid, started for this folder), or its URI
    answers. Costs no network wait when the process is gone and the port refuses."""
    pid = state.get("mlflow_pid")
    if alive(pid) and _is_our_mlflow(pid, folder):
        return True
    return healthy(state["uri"], timeout=2)


# --- MLflow ----------------------------------------------------------------------------------------------------

def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # as uvicorn binds: connections of a server just stopped (TIME_WAIT) must not count as "in use"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def healthy(uri: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _is_our_mlflow(pid: int, folder: Path) -> bool:
    """The pid still is the MLflow server started for `folder` (not a recycled pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"RETRIEVAL_LAB_SERVER_DIR={folder}".encode() in environ


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def _stop_mlflow(folder: Path, pid: int | None) -> bool:
    """Stop the server's process group (it was started in a session of its own: uvicorn and its worker go too)."""
    if not pid or not alive(pid) or not _is_our_mlflow(pid, folder):
        return False
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.time() + wait
        while time.time() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if not _group_alive(pid):
            return True
    raise ServerError(f"the MLflow server (process group {pid}) did not stop; end it with `kill -9 -{pid}`")


def _start_mlflow(folder: Path, port: int, backend_uri: str) -> int:
    exe = Path(sys.executable).parent / "mlflow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--artifacts-destination", str(folder / "artifacts")]
    # The backend URI holds the password: in the environment (readable by the owner only), not on the command line.
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend_uri, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
           "RETRIEVAL_LAB_SERVER_DIR": str(folder)}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = folder / "logs" / "mlflow.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=folder)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
            raise ServerError(f"the MLflow server exited with code {proc.returncode} before answering "
                              f"(log: {log}): {tail}")
        if healthy(uri, timeout=2):
            return proc.pid
        time.sleep(0.5)
    _stop_mlflow(folder, proc.pid)
    raise ServerError(f"the MLflow server did not answer {uri}/health within {START_TIMEOUT_S:.0f} s (log: {log})")


def _write_state(folder: Path, state: dict) -> None:
    tmp = folder / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(folder / STATE_FILE)


def _clean_leftovers(folder: Path) -> list[str]:
    """What a server that died (a reboot, a kill) left behind: a postmaster.pid naming no PostgreSQL server on
    this folder (PostgreSQL refuses to start while the pid it names lives, even when recycled), processes started
    for this folder that outlived their MLflow server (a uvicorn worker holding the port), temporary files."""
    cleaned = []
    pidfile = folder / "pgdata" / "postmaster.pid"
    pid = postmaster_pid(folder / "pgdata")
    if pidfile.exists() and (pid is None or not is_postmaster(pid, folder / "pgdata")):
        pidfile.unlink(missing_ok=True)
        cleaned.append(f"stale {pidfile.name} (pid {pid})")
    for stray in _processes_for(folder):
        try:
            os.kill(stray, signal.SIGKILL)
            cleaned.append(f"process {stray}")
        except ProcessLookupError:
            pass
    for name in (f".{STATE_FILE}.tmp", ".initdb-password"):
        if (folder / name).exists():
            (folder / name).unlink()
            cleaned.append(name)
    return cleaned


def _processes_for(folder: Path) -> list[int]:
    """Live processes started for the server of `folder` (their environment names it)."""
    marker = f"RETRIEVAL_LAB_SERVER_DIR={folder}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# --- start and stop --------------------------------------------------------------------------------------------

def start(folder: Path, port: int) -> tuple[dict, bool]:
    """Start PostgreSQL and MLflow (or find them running); returns (state, started)."""
    state = read_state(folder)
    if state and alive(state.get("mlflow_pid")) and healthy(state["uri"]):
        return state, False
    if state:  # left by a server that died: end what is left of it, keep the data
        _stop_mlflow(folder, state.get("mlflow_pid"))
        (folder / STATE_FILE).unlink(missing_ok=True)
    cleaned = _clean_leftovers(folder)
    if cleaned:
        print(f"recovered a server that had died in {folder}: removed {', '.join(cleaned)}", flush=True)
    port = port if port else free_port()
    if not _port_free(port):
        raise ServerError(f"port {port} on 127.0.0.1 is in use by another program\n  fix: pass --port N "
                          "(--port 0 picks a free one)")
    for sub in ("logs", "artifacts"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    creds = credentials(folder)
    init_cluster(folder, creds)
    pg_port = start_postgres(folder, creds)
    from urllib.parse import quote

    backend = (f"postgresql+psycopg://{quote(creds['user'])}:{quote(creds['password'], safe='')}@127.0.0.1:"
               f"{pg_port}/{quote(creds['database'])}")
    try:
        pid = _start_mlflow(folder, port, backend)
    except BaseException:
        stop_postgres(folder)
        raise
    state = {"uri": f"http://127.0.0.1:{port}", "port": port, "mlflow_pid": pid, "postgres_port": pg_port,
             "postgres_pid": postmaster_pid(folder / "pgdata"), "artifacts": str(folder / "artifacts"),
             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_state(folder, state)
    return state, True


def stop(folder: Path) -> list[str]:
    """Stop MLflow, then PostgreSQL; returns what was stopped."""
    stopped = []
    state = read_state(folder)
    if state and _stop_mlflow(folder, state.get("mlflow_pid")):
        stopped.append(f"MLflow (pid {state['mlflow_pid']})")
    if stop_postgres(folder):
        stopped.append("PostgreSQL")
    (folder / STATE_FILE).unlink(missing_ok=True)
    return stopped
