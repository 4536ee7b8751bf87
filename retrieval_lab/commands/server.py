"""`retrieval-lab server start|stop|status`: a team's MLflow tracking server on a throwaway PostgreSQL cluster.

Everything lives under one folder (default `mlruns/server/`):
  pgdata/            the PostgreSQL cluster (`initdb`), TCP on 127.0.0.1 only, no unix socket, password auth
  artifacts/         the artifact root, served by MLflow itself (clients upload over HTTP)
  logs/              postgres.log and mlflow.log
  credentials.json   the database role's password (mode 0600; never on a command line)
  state.json         written by `start`, removed by `stop`: the tracking URI `tracking=server` reads, and the pids

PostgreSQL refuses to run as root: as root its binaries run as the `postgres` user (Debian's package creates it),
which then owns pgdata/ and must be able to enter the folder's parents.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from retrieval_lab.errors import LabError

DEFAULT_DIR = Path("mlruns") / "server"
DEFAULT_PORT = 5000
STATE_FILE = "state.json"
DB_USER = "mlflow"
DB_NAME = "mlflow"
ROOT_RUN_AS = "postgres"  # PostgreSQL will not run as root; Debian's package creates this unprivileged user
START_TIMEOUT_S = 180.0   # the first start creates MLflow's schema in PostgreSQL: ~30 s on 2 cores


class ServerError(LabError):
    """The tracking server cannot be started, stopped or found."""


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
    if _alive(pid) and _is_our_mlflow(pid, folder):
        return True
    return healthy(state["uri"], timeout=2)


# --- PostgreSQL ------------------------------------------------------------------------------------------------

def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else the newest under Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / name).exists():
            return str(folder / name)
    raise ServerError(f"PostgreSQL's `{name}` is not installed\n  fix: `make postgres-deps` (as root: apt-get "
                      "install postgresql), or put the PostgreSQL server binaries on PATH")


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerError("PostgreSQL will not run as root and `runuser` is missing: start the server as an "
                          "ordinary user")
    return [runuser, "-u", ROOT_RUN_AS, "--", *cmd]


def _pg_owner_ids() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(ROOT_RUN_AS)
    except KeyError:
        raise ServerError(f"PostgreSQL will not run as root and there is no `{ROOT_RUN_AS}` user to run it as\n"
                          "  fix: `make postgres-deps` (Debian's package creates the user), or start the server as "
                          "an ordinary user") from None
    return entry.pw_uid, entry.pw_gid


def _run_pg(cmd: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ServerError(f"{what} failed (exit {result.returncode}): " + " | ".join(detail))
    return result


def _give_to_pg_user(path: Path) -> None:
    ids = _pg_owner_ids()
    if ids is not None:
        os.chown(path, *ids)


def _check_pg_user_reaches(path: Path) -> None:
    """As root, the `postgres` user must be able to enter every parent of the cluster folder."""
    if os.geteuid() != 0:
        return
    if subprocess.run(_as_pg_user(["test", "-x", str(path)]), capture_output=True).returncode == 0:
        return
    blocked = next((p for p in reversed(path.parents) if not (p.stat().st_mode & 0o001)), path.parent)
    raise ServerError(f"PostgreSQL runs as the `{ROOT_RUN_AS}` user here (it refuses root), and that user cannot "
                      f"enter {blocked} (mode {oct(blocked.stat().st_mode & 0o777)})\n  fix: pass --dir a folder "
                      f"whose parents others may enter (e.g. under the checkout or /srv), or run as an ordinary user")


def _credentials(folder: Path) -> dict:
    path = folder / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {"user": DB_USER, "password": secrets.token_urlsafe(24), "database": DB_NAME}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    return creds


def _init_cluster(folder: Path, creds: dict) -> None:
    pgdata = folder / "pgdata"
    if (pgdata / "PG_VERSION").exists():
        return
    pgdata.mkdir(mode=0o700, exist_ok=True)
    _give_to_pg_user(pgdata)
    _check_pg_user_reaches(pgdata)
    pwfile = folder / ".initdb-password"  # initdb wants pgdata empty: the file lives beside it for the call only
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(creds["password"] + "\n")
    _give_to_pg_user(pwfile)
    try:
        _run_pg([pg_bin("initdb"), "-D", str(pgdata), "-U", creds["user"], "--pwfile", str(pwfile),
                 "--auth-host=scram-sha-256", "--auth-local=reject", "-E", "UTF8", "--no-locale",
                 "--no-instructions"], "initdb")
    finally:
        pwfile.unlink(missing_ok=True)
    # Loopback TCP only, no unix socket (its default folder belongs to the system service); the port comes at start.
    with open(pgdata / "postgresql.conf", "a") as fh:
        fh.write("\n# retrieval-lab server: loopback only, no system socket\nlisten_addresses = '127.0.0.1'\n"
                 "unix_socket_directories = ''\n")


def _postmaster_port(pgdata: Path) -> int | None:
    """The port of the running cluster (line 4 of postmaster.pid), or None when it is not running."""
    if subprocess.run(_as_pg_user([pg_bin("pg_ctl"), "status", "-D", str(pgdata)]),
                      capture_output=True).returncode != 0:
        return None
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


def _is_postmaster(pid: int, pgdata: Path) -> bool:
    """`pid` is a live PostgreSQL server on `pgdata` (after a reboot, postmaster.pid may name a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _alive(pid) and Path(os.fsdecode(cmdline[0])).name.startswith("postgres") \
        and str(pgdata).encode() in cmdline


def _clean_leftovers(folder: Path) -> list[str]:
    """What a server that died (a reboot, a kill) left behind: a postmaster.pid naming no PostgreSQL server on
    this folder (PostgreSQL refuses to start while the pid it names lives, even when recycled), processes started
    for this folder that outlived their MLflow server (a uvicorn worker holding the port), temporary files."""
    cleaned = []
    pidfile = folder / "pgdata" / "postmaster.pid"
    pid = postmaster_pid(folder / "pgdata")
    if pidfile.exists() and (pid is None or not _is_postmaster(pid, folder / "pgdata")):
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
                if marker in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _start_postgres(folder: Path, creds: dict) -> int:
    pgdata = folder / "pgdata"
    port = _postmaster_port(pgdata)
    pid = postmaster_pid(pgdata)
    if port is not None and pid is not None and _is_postmaster(pid, pgdata):
        return port
    port = free_port()
    log = folder / "logs" / "postgres.log"
    log.touch()
    _give_to_pg_user(log)
    _run_pg([pg_bin("pg_ctl"), "start", "-D", str(pgdata), "-w", "-t", "60", "-l", str(log), "-o", f"-p {port}"],
            f"starting PostgreSQL (log: {log})")
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user=creds["user"], password=creds["password"],
                         dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (creds["database"],)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{creds["database"]}"')
    return port


def _stop_postgres(folder: Path) -> bool:
    pgdata = folder / "pgdata"
    pid = postmaster_pid(pgdata)
    if not (pgdata / "PG_VERSION").exists() or pid is None or not _is_postmaster(pid, pgdata):
        return False  # not running, or postmaster.pid names a recycled pid: nothing of ours to stop
    _run_pg([pg_bin("pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"], "stopping PostgreSQL")
    return True


# --- MLflow ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _alive(pid: int | None) -> bool:
    """A live process (a zombie waiting for its parent to reap it counts as gone)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
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
    if not pid or not _alive(pid) or not _is_our_mlflow(pid, folder):
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


# --- commands --------------------------------------------------------------------------------------------------

def start(folder: Path, port: int) -> tuple[dict, bool]:
    """Start PostgreSQL and MLflow (or find them running); returns (state, started)."""
    state = read_state(folder)
    if state and _alive(state.get("mlflow_pid")) and healthy(state["uri"]):
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
    creds = _credentials(folder)
    _init_cluster(folder, creds)
    pg_port = _start_postgres(folder, creds)
    from urllib.parse import quote

    backend = (f"postgresql+psycopg://{quote(creds['user'])}:{quote(creds['password'], safe='')}@127.0.0.1:"
               f"{pg_port}/{quote(creds['database'])}")
    try:
        pid = _start_mlflow(folder, port, backend)
    except BaseException:
        _stop_postgres(folder)
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
    if _stop_postgres(folder):
        stopped.append("PostgreSQL")
    (folder / STATE_FILE).unlink(missing_ok=True)
    return stopped


def cmd_server(args) -> int:
    folder = server_dir(args.dir)
    if args.action == "start":
        folder.mkdir(parents=True, exist_ok=True)
        state, started = start(folder, DEFAULT_PORT if args.port is None else args.port)
        if started:
            print(f"started MLflow (pid {state['mlflow_pid']}) on PostgreSQL (127.0.0.1:{state['postgres_port']}), "
                  f"data in {folder}")
        else:
            if args.port not in (None, 0, state["port"]):
                print(f"note: already running on port {state['port']}; --port {args.port} ignored (stop it first)")
            print(f"already running (pid {state['mlflow_pid']}), data in {folder}")
        print(state["uri"])
        print(f"log runs to it: tracking=server{'' if folder == server_dir() else f' tracking.server_dir={folder}'}"
              f" (or MLFLOW_TRACKING_URI={state['uri']})")
        return 0
    if args.action == "stop":
        stopped = stop(folder)
        print(f"stopped {' and '.join(stopped)}" if stopped else f"no server running in {folder}")
        return 0
    state = read_state(folder)  # status
    if state is None:
        print(f"not running (no server started in {folder})")
        return 1
    mlflow_up = _alive(state.get("mlflow_pid")) and healthy(state["uri"])
    pg_up = _postmaster_port(folder / "pgdata") is not None
    if mlflow_up and pg_up:
        print(f"running (MLflow pid {state['mlflow_pid']}, PostgreSQL 127.0.0.1:{state['postgres_port']}), "
              f"data in {folder}")
        print(state["uri"])
        return 0
    down = " and ".join(name for name, up in (("MLflow", mlflow_up), ("PostgreSQL", pg_up)) if not up)
    print(f"not running: {down} down (last URI {state['uri']}); `{start_command(folder, state.get('port'))}` "
          "restarts it with its data")
    return 1
