"""One model store under one cache root: a model trained with `cache.dir=<dir>` is registered there, found there by
`embedder=<name>` and the dense stage, and refused there by the leakage guard on its own training queries."""
from __future__ import annotations

import importlib.metadata

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.errors import LeakageError
from retrieval_lab.models.resolve import resolve_model
from retrieval_lab.models.zoo import ZOO
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


@pytest.mark.parametrize("name, sha", [
    ("minilm_l6", "c4a57a7f2011f2562b4fb34246d45976f6bb611ae1810569e0bd235637e8475f"),
    ("minilm_l3", "6f9977561e078e902b70789712594d8fb859f85ed9137fa160c409c10ead0aed"),
    ("wordllama", "86e57594b8703beb0a308e782e26f27d352d38f9928a60a3855451d89e322ea4"),
])
def test_zoo_weights_hashes_are_the_recorded_ones(name, sha):
    """The installed packages (pinned in requirements.lock) hash as they did: every cached embedding stays valid.
    Reads the package files only; no model is loaded."""
    entry = ZOO[name]
    try:
        installed = importlib.metadata.version(entry.pin.split("==")[0])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{entry.pin} is not installed")
    if installed != entry.pin.split("==")[1]:
        pytest.skip(f"{entry.pin.split('==')[0]} {installed} installed, the hash is recorded for {entry.pin}")
    assert resolve_model(name).weights_sha256 == sha
