"""A throwaway PostgreSQL cluster for the tracking server: its binaries, `initdb` (loopback TCP only, no unix socket,
password auth), start and stop; and the process helpers the server shares (a free port, a live pid).

PostgreSQL refuses to run as root: as root its binaries run as the `postgres` user (Debian's package creates it),
which then owns pgdata/ and must be able to enter the folder's parents.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from retrieval_lab.errors import LabError

DB_USER = "mlflow"
DB_NAME = "mlflow"
ROOT_RUN_AS = "postgres"  # PostgreSQL will not run as root; Debian's package creates this unprivileged user


class ServerError(LabError):
    """The tracking server cannot be started, stopped or found."""


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


def credentials(folder: Path) -> dict:
    path = folder / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {"user": DB_USER, "password": secrets.token_urlsafe(24), "database": DB_NAME}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    return creds


def init_cluster(folder: Path, creds: dict) -> None:
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


def postmaster_port(pgdata: Path) -> int | None:
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


def is_postmaster(pid: int, pgdata: Path) -> bool:
    """`pid` is a live PostgreSQL server on `pgdata` (after a reboot, postmaster.pid may name a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return alive(pid) and Path(os.fsdecode(cmdline[0])).name.startswith("postgres") \
        and str(pgdata).encode() in cmdline


def start_postgres(folder: Path, creds: dict) -> int:
    pgdata = folder / "pgdata"
    port = postmaster_port(pgdata)
    pid = postmaster_pid(pgdata)
    if port is not None and pid is not None and is_postmaster(pid, pgdata):
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


def stop_postgres(folder: Path) -> bool:
    pgdata = folder / "pgdata"
    pid = postmaster_pid(pgdata)
    if not (pgdata / "PG_VERSION").exists() or pid is None or not is_postmaster(pid, pgdata):
        return False  # not running, or postmaster.pid names a recycled pid: nothing of ours to stop
    _run_pg([pg_bin("pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"], "stopping PostgreSQL")
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int | None) -> bool:
    """A live process (a zombie waiting for its parent to reap it counts as gone)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
