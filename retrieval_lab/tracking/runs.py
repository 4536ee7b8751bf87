"""MLflow runs: one run per evaluated configuration with params, metrics, timings, config.yaml, per-query table and
TREC run; the summary printed beside it; a run's per-query values read back.

Logging is batched: one call per kind of data instead of one per value (4x cheaper on SQLite). What goes into a run
(the experiment's name, the resolved config, the params) is decided above, by `pipeline.tracked`: the store knows
no config group or dataset.
"""
from __future__ import annotations

import csv
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from retrieval_lab.errors import LabError
from retrieval_lab.tracking.store import client, ensure_experiment

PARAM_BATCH = 100  # MLflow's per-call limit for params
PARAM_MAX_CHARS = 6000


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = data
    return out


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


def log_run(node: Any, experiment: str, outcome, config: dict, params: dict, tags: dict[str, str] | None = None,
            extra_artifacts: dict[str, str] | None = None, run_id: str | None = None,
            run_name: str | None = None) -> str:
    """Log one evaluated configuration (`outcome`) as an MLflow run in `experiment` (a new one, or the open
    `run_id`) of the store `node` (the `tracking` config) names; returns the run id. `config` is written as
    config.yaml, `params` (flattened) are the run's params. A new run is named `run_name`, else
    `tracking.run_name`."""
    from mlflow.entities import Metric, RunTag

    node = node or {}
    mlflow_client = client(node)
    experiment_id = ensure_experiment(experiment, node)
    all_tags = {"dataset": outcome.dataset.name, "dataset_hash": outcome.dataset.fingerprint[:16],
                "split": outcome.dataset.split, "role": "config"}
    all_tags.update(tags or {})
    if run_id is None:
        run_id = mlflow_client.create_run(experiment_id, run_name=run_name or node.get("run_name") or None,
                                          tags=all_tags).info.run_id
    else:  # opened by a sweep job before the work started: add the dataset tags
        mlflow_client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
    with finishing(mlflow_client, run_id):
        log_params(mlflow_client, run_id, flatten(params))
        now = int(time.time() * 1000)
        values = {**outcome.evaluation.means, **outcome.timings, **outcome.extra_metrics}
        mlflow_client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()
                                                 if v is not None])
        with tempfile.TemporaryDirectory() as tmp:
            write_artifacts(Path(tmp), config, outcome, extra_artifacts)
            mlflow_client.log_artifacts(run_id, tmp)
    return run_id


def write_artifacts(folder: Path, config: Any, outcome, extra: dict[str, str] | None = None) -> None:
    """config.yaml (the resolved `config`), per_query.csv and run.trec of `outcome`, and the `extra` text files."""
    cfg_plain = OmegaConf.create(config)
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
