"""The MLflow tracking store: where runs go (SQLite inside `mlruns/` by default, a server with `tracking.uri`,
`tracking=server` or `MLFLOW_TRACKING_URI`), a check that fails in seconds before any work, the client (with HTTP
retries against a server) and experiments.

The default store is SQLite inside `mlruns/` addressed by an absolute URI, so Hydra jobs with any working
directory share it; `MLFLOW_TRACKING_URI` (or `tracking.uri`) points at a team server instead.
"""
from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrieval_lab.errors import LabError


def quiet_mlflow_environment() -> None:
    """Telemetry off unless the user asked for it (it sends DNS look-ups and writes an install id). No "View run at"
    line from MLflow for each run ended on a tracking server: the lab prints its own line per configuration."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def tracking_uri(node: Any = None) -> str:
    node = node or {}
    uri = node.get("uri") or _server_dir_uri(node) or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(node.get("root") or "mlruns").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def _server_dir_uri(node: Any) -> str | None:
    """With tracking=server: the URI `retrieval-lab server start` wrote into tracking.server_dir."""
    if not node.get("server_dir"):
        return None
    from retrieval_lab.tracking.server import server_uri

    return server_uri(node.get("server_dir"))


def artifact_root(node: Any = None) -> str | None:
    """Artifacts beside the SQLite file; a remote server decides its own."""
    node = node or {}
    if node.get("uri") or node.get("server_dir") or os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (Path(node.get("root") or "mlruns").expanduser().resolve() / "artifacts").as_uri()


class TrackingStoreError(LabError):
    """The tracking store cannot be opened or written; raised before any pipeline work starts."""

    def __init__(self, uri: str, source: str, reason: str, fix: str):
        super().__init__(f"cannot use the MLflow tracking store {uri} ({source}): {reason}\n  fix: {fix}")
        self.uri = uri


# The store check must fail in seconds: MLflow's default is 7 retries with exponential back-off and a 120 s timeout.
CHECK_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}


def server_command(host: str = "127.0.0.1", port: int | str = 5000, server_dir: str | None = None) -> str:
    """The command that starts the server a URI names; with tracking=server, the exact --dir it was started with."""
    if host in ("127.0.0.1", "localhost"):
        if server_dir:
            from retrieval_lab.tracking.server import server_dir as resolved, start_command

            return start_command(resolved(server_dir), port)
        return f"retrieval-lab server start --port {port}"
    return f"mlflow server --host {host} --port {port} --workers 1"  # on that host


def uri_source(node: Any = None) -> str:
    """Where the tracking URI comes from, in the words a user would change it with."""
    node = node or {}
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if node.get("uri"):
        return "from MLFLOW_TRACKING_URI" if node.get("uri") == env else "from tracking.uri"
    if node.get("server_dir"):
        return f"from tracking=server, the server started in tracking.server_dir={node.get('server_dir')}"
    if env:
        return "from MLFLOW_TRACKING_URI"
    return f"the default store under tracking.root={node.get('root') or 'mlruns'}"


def _store_fix(uri: str, server_dir: str | None = None) -> str:
    if uri.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        parts = urlsplit(uri)
        command = server_command(parts.hostname or "127.0.0.1", parts.port or 5000, server_dir)
        return (f"start the server (`{command}`), or set "
                "MLFLOW_TRACKING_URI / tracking.uri to a running server or to a writable sqlite path "
                "(sqlite:////abs/path/mlflow.db); tracking.enabled=false runs without tracking")
    return ("set MLFLOW_TRACKING_URI / tracking.uri to a sqlite path in a writable folder "
            "(sqlite:////abs/path/mlflow.db), or unset both to use ./mlruns/mlflow.db; or point it at a running "
            f"tracking server (start one with `{server_command()}`); tracking.enabled=false runs without tracking")


def _short_reason(exc: BaseException) -> str:
    """The useful end of an MLflow/requests/SQLAlchemy error: '[Errno 111] Connection refused', not the URL chain."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] [^\"'()\n]+", text)
    if errno:
        return errno.group(0).strip().rstrip(":").strip()
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _check_sqlite_path(uri: str, source: str) -> None:
    """The folder of the database can be created and written, and the database file (if any) is a writable file."""
    raw = uri[len("sqlite:///"):].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return
    db = Path(raw)
    folder = db.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingStoreError(uri, source, f"its folder {folder} cannot be created ({_short_reason(exc)})",
                                 _store_fix(uri)) from None
    if db.exists() and not db.is_file():
        raise TrackingStoreError(uri, source, f"{db} is not a file", _store_fix(uri))
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise TrackingStoreError(uri, source, f"{db} is not writable", _store_fix(uri))
    try:  # SQLite writes journal files beside the database: the folder itself must take new files
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise TrackingStoreError(uri, source, f"its folder {folder} is not writable ({_short_reason(exc)})",
                                 _store_fix(uri)) from None


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_store(node: Any = None) -> str:
    """Open the tracking store once (creating a SQLite database), or raise TrackingStoreError; returns the URI.

    Called before any pipeline work by `run` and at the start of a sweep, so a wrong URI costs seconds, not a run.
    """
    node = node or {}
    source = uri_source(node)
    try:
        uri = tracking_uri(node)
    except OSError as exc:  # the default store's folder (tracking.root) cannot be created
        root = Path(node.get("root") or "mlruns").expanduser().resolve()
        raise TrackingStoreError(f"sqlite:///{root / 'mlflow.db'}", source,
                                 f"its folder {root} cannot be created ({_short_reason(exc)})",
                                 "set tracking.root to a writable folder, or MLFLOW_TRACKING_URI to a writable "
                                 f"sqlite path or a running tracking server (start one with `{server_command()}`)"
                                 ) from None
    if uri.startswith("sqlite:///"):
        _check_sqlite_path(uri, source)
    quiet_mlflow_environment()
    from mlflow.tracking import MlflowClient

    try:
        with _environment(CHECK_HTTP_ENV):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # any failure here means no run could be logged: say so before the work starts
        what = "the store cannot be opened"
        if uri.startswith(("http://", "https://")):
            unreachable = re.search(r"Errno|Max retries|timed out|Connection(Error| refused| reset)", str(exc))
            what = "no tracking server answers" if unreachable else "the tracking server refused the request"
        raise TrackingStoreError(uri, source, f"{what} ({_short_reason(exc)})",
                                 _store_fix(uri, node.get("server_dir"))) from None
    return uri


# A tracking server's transient errors (connection refused while it restarts, 429 and 5xx answers) are retried by
# MLflow's HTTP client with exponential back-off. Its own defaults (7 retries, factor 2, 120 s timeout) leave a job
# hanging ~4 min on a server that is gone; these wait ~30 s (0 + 2 + 4 + 8 + 16 s, plus up to 1 s jitter each), enough
# for `retrieval-lab server stop && retrieval-lab server start`. A variable already set in the environment wins.
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                       "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
# What requests/urllib3 say once the retries are spent (a local file's "[Errno 2]" is not the server being down)
_SERVER_DOWN = re.compile(r"Max retries exceeded|too many \d+ error responses|NewConnectionError|timed out|"
                          r"Connection (refused|reset|aborted)")


class ServerClient:
    """An MlflowClient for a tracking server whose calls raise TrackingStoreError, naming the URI, when the server
    is still unreachable (or still failing with 5xx) after the HTTP retries."""

    def __init__(self, inner, source: str, server_dir: str | None = None):
        self._inner = inner
        self._source = source
        self._server_dir = server_dir

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except Exception as exc:
                if not _SERVER_DOWN.search(str(exc)):
                    raise
                uri = self._inner.tracking_uri
                retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
                raise TrackingStoreError(uri, self._source, f"the tracking server stayed down through {retries} "
                                         f"retries ({_short_reason(exc)}); what this job had not logged yet is "
                                         "lost, runs logged before are in the server's store",
                                         _store_fix(uri, self._server_dir)) from exc

        return call


def client(node: Any = None):
    node = node or {}
    quiet_mlflow_environment()
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(node)
    if not uri.startswith(("http://", "https://")):
        return MlflowClient(tracking_uri=uri)
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)  # inherited by sweep workers started after this
    return ServerClient(MlflowClient(tracking_uri=uri), uri_source(node), node.get("server_dir"))


def ensure_experiment(name: str, node: Any = None) -> str:
    """Experiment id for `name`, created (with artifacts beside the store) if missing."""
    mlflow_client = client(node)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(node)
    location = f"{root}/{name}" if root else None
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another worker
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
