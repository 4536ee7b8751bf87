"""MLflow logging: one run per configuration with params, metrics, timings, config.yaml, per-query table, TREC run.

The default store is SQLite inside `mlruns/` addressed by an absolute URI, so Hydra jobs with any working
directory share it; `MLFLOW_TRACKING_URI` (or `tracking.uri`) points at a team server instead.
Logging is batched: one call per kind of data instead of one per value (4x cheaper on SQLite).
"""
from __future__ import annotations

import csv
import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from retrieval_lab.data import dataset_name
from retrieval_lab.data.synth import synthetic_info
from retrieval_lab.errors import LabError
from retrieval_lab.pipeline import unused_config_groups

PARAM_BATCH = 100  # MLflow's per-call limit for params
PARAM_MAX_CHARS = 6000


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
    from retrieval_lab.commands.server import server_uri

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
            from retrieval_lab.commands.server import server_dir as resolved, start_command

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


def experiment_name(cfg: DictConfig) -> str:
    """`tracking.experiment`, else the dataset's name (with `dataset.path`, the name of the folder it points at).
    `{dataset}` in tracking.experiment stands for that name, so a study logs where its data says
    (`own-docs-{dataset}`: own-docs-r_manuals, or own-docs-my_docs with dataset.path=my_docs)."""
    node = cfg.get("tracking") or {}
    name = dataset_name(cfg.dataset)
    return str(node.get("experiment") or name).replace("{dataset}", name)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = data
    return out


def resolved_config(cfg: DictConfig) -> dict:
    """The config as it ran; `dataset.name` is the name the runs are logged under (with `dataset.path` to another
    folder than the option's own, that folder's: an export of a run on your documents names your documents)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    if isinstance(data.get("dataset"), dict) and data["dataset"].get("name") is not None:
        data["dataset"]["name"] = dataset_name(cfg.dataset)
    return data


def logged_params_config(cfg: DictConfig) -> dict:
    """The resolved config minus groups no stage used (the embedder of a BM25 run); config.yaml keeps them all."""
    data = resolved_config(cfg)
    for group in unused_config_groups(cfg):
        data.pop(group, None)
    return data


def log_params(mlflow_client, run_id: str, params: dict[str, Any]) -> None:
    """Params in batches of MLflow's per-call limit, each value cut to its length limit."""
    from mlflow.entities import Param

    rows = [Param(k, str(v)[:PARAM_MAX_CHARS]) for k, v in params.items()]
    for start in range(0, len(rows), PARAM_BATCH):
        mlflow_client.log_batch(run_id, params=rows[start:start + PARAM_BATCH])


@contextmanager
def finishing(mlflow_client, run_id: str):
    """Mark the run FINISHED when the block completes, FAILED (and re-raise) when it does not."""
    try:
        yield
    except BaseException:
        mlflow_client.set_terminated(run_id, "FAILED")
        raise
    mlflow_client.set_terminated(run_id, "FINISHED")


def log_outcome(cfg: DictConfig, outcome, tags: dict[str, str] | None = None,
                extra_artifacts: dict[str, str] | None = None, run_id: str | None = None,
                run_name: str | None = None) -> str:
    """Log one evaluated configuration as an MLflow run (a new one, or the open `run_id`); returns the run id. A new
    run is named `run_name`, else `tracking.run_name`."""
    from mlflow.entities import Metric, RunTag

    node = cfg.get("tracking") or {}
    mlflow_client = client(node)
    experiment_id = ensure_experiment(experiment_name(cfg), node)
    all_tags = {"dataset": outcome.dataset.name, "dataset_hash": outcome.dataset.fingerprint[:16],
                "split": outcome.dataset.split, "role": "config"}
    synthetic = synthetic_info(outcome.dataset)
    if synthetic is not None:  # `best` warns under a leaderboard of synthetic questions
        all_tags.update({"eval_set": "synthetic", "synth_generator": str(synthetic.get("generator"))})
    all_tags.update(tags or {})
    if run_id is None:
        run_id = mlflow_client.create_run(experiment_id, run_name=run_name or node.get("run_name") or None,
                                          tags=all_tags).info.run_id
    else:  # opened by a sweep job before the work started: add the dataset tags
        mlflow_client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
    with finishing(mlflow_client, run_id):
        log_params(mlflow_client, run_id, flatten(logged_params_config(cfg)))
        now = int(time.time() * 1000)
        values = {**outcome.evaluation.means, **outcome.timings, **outcome.extra_metrics}
        mlflow_client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()
                                                 if v is not None])
        with tempfile.TemporaryDirectory() as tmp:
            write_artifacts(Path(tmp), cfg, outcome, extra_artifacts)
            mlflow_client.log_artifacts(run_id, tmp)
    return run_id


def write_artifacts(folder: Path, cfg: DictConfig, outcome, extra: dict[str, str] | None = None) -> None:
    cfg_plain = OmegaConf.create(resolved_config(cfg))
    # log_text of the resolved YAML, not log_dict: it keeps key order and re-runs reproduce the metrics.
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg_plain))
    ev = outcome.evaluation
    names = list(ev.per_query)
    partial = outcome.extra_per_query  # defined on some queries only (span metrics): blank cells for the others
    with open(folder / "per_query.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query_id", *names, *partial])
        for row, qid in enumerate(ev.query_ids):
            writer.writerow([qid, *(f"{ev.per_query[n][row]:.6f}" for n in names),
                             *(f"{v[qid]:.6f}" if qid in v else "" for v in partial.values())])
    outcome.run.to_trec(folder / "run.trec", tag=outcome.dataset.name)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)


def format_number(value: float) -> str:
    """Counts as integers (5183), everything else with four decimals (0.6762)."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.4f}"


def summary_table(outcome, ks: tuple[int, ...] = (10, 100)) -> str:
    means = outcome.evaluation.means
    rows = [("dataset", f"{outcome.dataset.name} ({outcome.dataset.split}, {len(outcome.evaluation.query_ids)} "
                        f"queries, {len(outcome.dataset.corpus)} docs)")]
    for family in ("ndcg", "recall", "mrr", "map", "precision", "hit_rate"):
        cells = [f"@{k} {means[f'{family}_at_{k}']:.4f}" for k in ks if f"{family}_at_{k}" in means]
        if cells:
            rows.append((family, "  ".join(cells)))
    t = outcome.timings
    rows.append(("index", f"{t.get('index_seconds', 0):.2f} s"))
    rows.append(("query latency", f"p50 {t.get('query_p50_ms', 0):.1f} ms, p95 {t.get('query_p95_ms', 0):.1f} ms"))
    for key, value in outcome.extra_metrics.items():
        rows.append((key, format_number(value)))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def per_query_values(mlflow_client, run_id: str, metric: str) -> dict[str, float]:
    """A run's metric per query from its `per_query.csv` artifact (what `best` and the sweep report compare)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow_client.download_artifacts(run_id, "per_query.csv", tmp)
        except Exception as exc:
            raise LabError(f"run {run_id} has no per_query.csv artifact ({exc})") from exc
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if metric not in (reader.fieldnames or []):
                raise LabError(f"run {run_id}: per_query.csv has no column '{metric}'")
            # a blank cell: the metric is not defined for that query (span metrics on queries without span gold)
            return {row["query_id"]: float(row[metric]) for row in reader if row[metric] != ""}
