"""The one evaluate-and-log path (`pipeline.tracked.evaluate_and_log`) that `run`, each sweep job and `evaluate` take:
the store checked before any work, the outcome logged with its config, params, metrics and tags, a hook between the
two, an open run (a sweep job's) finished in place. BM25 over a hand-made BEIR folder, a SQLite store in tmp_path."""
from __future__ import annotations

import pytest
import yaml

from retrieval_lab import tracking
from retrieval_lab.config import compose_config
from retrieval_lab.pipeline.tracked import evaluate_and_log, experiment_name
from tests.unit.test_fusion_pipeline import toy_dataset


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module (creating one costs seconds); each test logs into its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


def toy_cfg(tmp_path, store: str, *extra):
    folder = toy_dataset(tmp_path / "toy")
    return compose_config([f"dataset.path={folder}", f"cache.dir={tmp_path / 'cache'}", "retriever=bm25",
                           f"tracking.uri={store}", "eval.k=[1,3,5]", "eval.depth=5", *extra])


def test_a_run_is_logged_with_its_metrics_config_and_the_hooks_tags(tmp_path, store):
    cfg = toy_cfg(tmp_path, store, "tracking.experiment=toy-runs")
    seen = []

    def hook(outcome):
        seen.append(outcome.evaluation.means["ndcg_at_3"])
        outcome.extra_metrics["hook_metric"] = 7.0  # what the hook adds to the outcome is logged too
        return {"changed_keys": "0"}

    result = evaluate_and_log(cfg, tags={"role": "evaluation"}, run_name="toy bm25", before_logging=hook)
    assert seen == [result.outcome.evaluation.means["ndcg_at_3"]] and result.run_id
    client = tracking.client(cfg.tracking)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "toy bm25"
    assert client.get_experiment(run.info.experiment_id).name == experiment_name(cfg) == "toy-runs"
    assert run.data.metrics["ndcg_at_3"] == pytest.approx(result.outcome.evaluation.means["ndcg_at_3"])
    assert run.data.metrics["hook_metric"] == 7.0
    tags = run.data.tags
    assert tags["role"] == "evaluation" and tags["changed_keys"] == "0" and tags["dataset"] == "toy"
    assert tags["dataset_hash"] == result.outcome.dataset.fingerprint[:16]
    assert "retriever.name" in run.data.params and not any(k.startswith("embedder.") for k in run.data.params)
    logged = yaml.safe_load(open(client.download_artifacts(result.run_id, "config.yaml", str(tmp_path))))
    assert logged["retriever"]["name"] == "bm25" and "embedder" in logged  # config.yaml keeps every group


def test_without_logging_no_store_is_opened(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")  # a store that cannot be created: never touched
    cfg = toy_cfg(tmp_path, f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'mlflow.db'}")
    result = evaluate_and_log(cfg, log=False, before_logging=lambda outcome: {"unused": "tag"})
    assert result.run_id is None and result.outcome.evaluation.means["ndcg_at_3"] > 0


def test_an_unusable_store_fails_before_the_pipeline_runs(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    cfg = toy_cfg(tmp_path, f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'mlflow.db'}",
                  f"dataset.path={tmp_path / 'no-such-dataset'}")  # the pipeline would fail on the data instead
    with pytest.raises(tracking.TrackingStoreError, match="cannot be created"):
        evaluate_and_log(cfg)


def test_an_open_run_is_finished_in_place(tmp_path, store):
    """A sweep job opens its run before the work (tagged, resumable); the evaluation is logged into that run."""
    cfg = toy_cfg(tmp_path, store, "tracking.experiment=toy-sweep")
    client = tracking.client(cfg.tracking)
    experiment_id = tracking.ensure_experiment(experiment_name(cfg), cfg.tracking)
    run_id = client.create_run(experiment_id, run_name="job 0", tags={"sweep_id": "s1"}).info.run_id
    result = evaluate_and_log(cfg, tags={"sweep_id": "s1"}, run_id=run_id)
    assert result.run_id == run_id
    runs = client.search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [run_id] and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["dataset"] == "toy" and "ndcg_at_3" in runs[0].data.metrics
