"""`retrieval-lab run`: one Hydra-configured evaluation logged to MLflow, config errors before any work."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "retrieval_lab.cli"]


def cli(args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=300)


def test_run_logs_everything_to_mlflow(data_root, mlflow_uri, tmp_path):
    proc = cli(["run", "dataset=scifact", f"dataset.root={data_root}", "retriever=bm25", "retriever.k1=1.2",
                f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode == 0, proc.stderr
    assert "ndcg" in proc.stdout and "@10 0.6" in proc.stdout  # the summary table

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("scifact")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["retriever.k1"] == "1.2" and run.data.params["dataset.name"] == "scifact"
    metrics = run.data.metrics
    for name in ("ndcg_at_10", "recall_at_100", "mrr_at_10", "map_at_10", "precision_at_10", "hit_rate_at_10",
                 "index_seconds", "query_p50_ms", "query_p95_ms", "queries_per_second"):
        assert name in metrics, name
    assert 0.6 < metrics["ndcg_at_10"] < 0.75
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "per_query.csv", "run.trec"} <= artifacts
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
    assert "k1: 1.2" in (folder / "config.yaml").read_text()
    assert len((folder / "per_query.csv").read_text().splitlines()) == 301
    lines = (folder / "run.trec").read_text().splitlines()
    assert len({line.split()[0] for line in lines}) == 300
    assert 29_000 < len(lines) <= 300 * 100  # a few short queries match fewer than 100 documents


def test_default_store_is_sqlite_in_mlruns_with_an_absolute_uri(data_root, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    proc = cli(["run", f"dataset.root={data_root}", "dataset=cranfield", f"hydra.run.dir={tmp_path}/hydra"],
               env_extra={"MLFLOW_TRACKING_URI": ""}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mlruns" / "mlflow.db").exists()
    assert f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}" in proc.stdout


@pytest.mark.parametrize("override, key", [
    ("retriever.b=1.5", "retriever.b"),
    ("retriever.k1=-2", "retriever.k1"),
    ("eval.k=[0,10]", "eval.k"),
    ("+retriever.k3=1", "retriever.k3"),
])
def test_config_errors_name_the_key_before_any_work(override, key, tmp_path):
    # dataset.root points nowhere: a config error must come first, before the data is touched.
    proc = cli(["run", override, f"dataset.root={tmp_path}/nothing", "tracking.enabled=false",
                f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode == 2
    assert f"config key '{key}'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_group_option_lists_the_choices(tmp_path):
    proc = cli(["run", "retriever=bm26", f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode != 0
    assert "Could not find 'retriever/bm26'" in proc.stderr and "bm25" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_split_is_a_clear_error(data_root, tmp_path):
    proc = cli(["run", "dataset=scifact", f"dataset.root={data_root}", "dataset.split=dev",
                "tracking.enabled=false", f"hydra.run.dir={tmp_path}/hydra"])
    assert proc.returncode == 2
    assert "split 'dev' not found; splits here: test, train" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_is_fast_and_lists_commands():
    proc = cli(["--help"])
    assert proc.returncode == 0 and "run" in proc.stdout and "data" in proc.stdout
