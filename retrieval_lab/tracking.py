"""MLflow logging: one run per configuration with params, metrics, timings, config.yaml, per-query table, TREC run.

The default store is SQLite inside `mlruns/` addressed by an absolute URI, so Hydra jobs with any working
directory share it; `MLFLOW_TRACKING_URI` (or `tracking.uri`) points at a team server instead.
Logging is batched: one call per kind of data instead of one per value (4x cheaper on SQLite).
"""
from __future__ import annotations

import csv
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

PARAM_BATCH = 100  # MLflow's per-call limit for params
PARAM_MAX_CHARS = 6000


def quiet_mlflow_environment() -> None:
    """Telemetry off unless the user asked for it (it sends DNS look-ups and writes an install id)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_uri(node: Any = None) -> str:
    node = node or {}
    uri = node.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(node.get("root") or "mlruns").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def artifact_root(node: Any = None) -> str | None:
    """Artifacts beside the SQLite file; a remote server decides its own."""
    node = node or {}
    if node.get("uri") or os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (Path(node.get("root") or "mlruns").expanduser().resolve() / "artifacts").as_uri()


def client(node: Any = None):
    quiet_mlflow_environment()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(node))


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


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = data
    return out


def resolved_config(cfg: DictConfig) -> dict:
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    return data


def logged_params_config(cfg: DictConfig) -> dict:
    """The resolved config minus groups no stage used (the embedder of a BM25 run); config.yaml keeps them all."""
    data = resolved_config(cfg)
    try:
        from retrieval_lab.dense import unused_config_groups

        for group in unused_config_groups(cfg):
            data.pop(group, None)
    except Exception:  # logging must not fail on a config the dense helper does not understand
        pass
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
                extra_artifacts: dict[str, str] | None = None, run_id: str | None = None) -> str:
    """Log one evaluated configuration as an MLflow run (a new one, or the open `run_id`); returns the run id."""
    from mlflow.entities import Metric, RunTag

    node = cfg.get("tracking") or {}
    mlflow_client = client(node)
    experiment_id = ensure_experiment(node.get("experiment") or outcome.dataset.name, node)
    all_tags = {"dataset": outcome.dataset.name, "dataset_hash": outcome.dataset.fingerprint[:16],
                "split": outcome.dataset.split, "role": "config"}
    all_tags.update(tags or {})
    if run_id is None:
        run_id = mlflow_client.create_run(experiment_id, run_name=node.get("run_name") or None,
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
    with open(folder / "per_query.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query_id", *names])
        for row, qid in enumerate(ev.query_ids):
            writer.writerow([qid, *(f"{ev.per_query[n][row]:.6f}" for n in names)])
    outcome.run.to_trec(folder / "run.trec", tag=outcome.dataset.name)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)


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
        rows.append((key, f"{value:.4f}"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
