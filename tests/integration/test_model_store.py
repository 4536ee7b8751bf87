"""One model store under one cache root: a model trained with `cache.dir=<dir>` is registered there, found there by
`embedder=<name>` and the dense stage, and refused there by the leakage guard on its own training queries."""
from __future__ import annotations

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.errors import LeakageError
from retrieval_lab.paths import cache_root
from retrieval_lab.pipeline import run_experiment
from tests.integration.sweep_util import cli
from tests.unit.test_train import toy_splits


@pytest.mark.slow
def test_a_model_trained_under_a_cache_dir_is_refused_on_its_training_queries(tmp_path, mlflow_uri):
    folder = toy_splits(tmp_path / "toy")  # 16 docs; train q0-q11, test q12-q15
    store = tmp_path / "elsewhere"  # not $RETRIEVAL_LAB_CACHE
    assert cache_root() != store
    proc = cli(["train-embedder", f"dataset.path={folder}", "name=toy-guard", "epochs=1", "batch_size=4",
                "max_seq_length=64", "threads=1", f"cache.dir={store}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"embedder=toy-guard cache.dir={store}" in proc.stdout
    assert (store / "conf" / "embedder" / "toy-guard.yaml").exists()
    assert (store / "models" / "registry" / "toy-guard.json").exists()
    assert not (cache_root() / "models" / "registry" / "toy-guard.json").exists()

    run = [f"dataset.path={folder}", "retriever=dense", "embedder=toy-guard", f"cache.dir={store}",
           "tracking.enabled=false"]
    with pytest.raises(LeakageError, match="embedder 'toy-guard' was trained on 11 queries of toy split 'train'"):
        run_experiment(compose_config([*run, "dataset.split=train"]))
    proc = cli(["run", *run, "dataset.split=train"], tmp_path)
    assert proc.returncode == 2 and "was trained on 11 queries" in proc.stderr, proc.stderr[-3000:]

    outcome = run_experiment(compose_config([*run, "dataset.split=test"]))  # queries it never saw: evaluated
    assert len(outcome.evaluation.query_ids) == 4 and outcome.evaluation.means["recall_at_100"] == 1.0
