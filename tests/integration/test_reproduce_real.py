"""benchmarks/reproduce.py itself and runs on real data: a pipeline whose trained models are missing stops before any
work on the real SciFact; the script refuses repeated seeds and the shared cache; and, end to end on a hand-made
collection, real trainings (subprocesses) per seed then the mean ± sd and the paired tests. The plan it runs is
retrieval_lab/training/reproduce.py (tests/unit/test_reproduce.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.errors import ModelNotFoundError
from retrieval_lab.training import reproduce as plan
from retrieval_lab.training.recipes import needed

REPO = Path(__file__).resolve().parents[2]


def benchmark_script(name: str):
    """benchmarks/<name>.py as a module, loaded by its path (benchmarks/ is no package and stays off sys.path)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = benchmark_script("reproduce")


def test_best_scifact_fails_before_any_work_on_an_empty_cache(tmp_path, data_root):
    from retrieval_lab.pipeline import run_experiment

    cache = tmp_path / "empty"
    cfg = compose_config(["+experiments=best-scifact", f"dataset.root={data_root}", f"cache.dir={cache}",
                          "tracking.enabled=false"])
    with pytest.raises(ModelNotFoundError) as err:
        run_experiment(cfg)
    for recipe in needed(cfg):
        assert recipe.model in str(err.value) and recipe.command in str(err.value)
    assert not (cache / "step_runs").exists() and not (cache / "datasets").exists()


def test_the_script_never_trains_in_the_shared_cache(capsys):
    with pytest.raises(SystemExit):
        script.main(["--plan", "--cache", "~/.cache/retrieval-lab"])
    assert "shared default cache" in capsys.readouterr().err


def test_seeds_must_be_distinct(capsys):
    with pytest.raises(SystemExit):
        script.main(["--plan", "--seeds", "0", "0"])
    assert "give distinct seeds" in capsys.readouterr().err


@pytest.mark.slow
def test_reproduce_over_two_seeds_end_to_end_on_a_small_pipeline(tmp_path, monkeypatch):
    """benchmarks/reproduce.py --seeds 0 1 on a hand-made collection: an embedder and a reranker on top of it,
    trained from cold per seed by real trainings, then the mean ± sd over the seeds, the single-seed figure and the
    paired tests of the mean gain over the first stage and over BM25."""
    import json

    from tests.unit.test_train import toy_splits

    toy_splits(tmp_path / "data" / "toy")
    config = tmp_path / "config"
    (config / "dataset").mkdir(parents=True)
    (config / "experiments").mkdir()
    (config / "dataset" / "toy.yaml").write_text(
        f"name: toy\nroot: {tmp_path / 'data'}\npath: null\nsplit: test\nquestions: null\ninclude: null\n"
        "on_error: skip\nignore_identical_ids: false\nurl: null\nmd5: null\n")
    (config / "experiments" / "toy-ce.yaml").write_text(
        "# @package _global_\n"
        "requires:\n"
        "  toy-ft: retrieval-lab train-embedder dataset=toy base=minilm_l6 seed=0 batch_size=4 max_seq_length=32 "
        "lr=1e-4 warmup=0 name=toy-ft\n"
        "  toy-ce: retrieval-lab train-reranker dataset=toy base=toy-ft seed=0 layers=1 loss=bce negatives=2 "
        "negative_depth=4 batch_size=8 max_length=32 lr=1e-4 warmup=0 name=toy-ce\n"
        "defaults:\n  - override /dataset: toy\n  - override /retriever: dense\n  - override /reranker: cross_encoder\n"
        "embedder:\n  name: toy-ft\n  model: toy-ft\n  backend: torch\n  max_tokens: 32\n"
        "reranker:\n  model: toy-ce\n  depth: 5\n  max_length: 32\n  interpolate: 0.5\n"
        "tracking:\n  experiment: toy-ce\n")
    monkeypatch.setenv("RETRIEVAL_LAB_CONFIG", str(config))
    monkeypatch.setattr(plan, "RECORDED", {"toy-ce": ("toy", 0.5, "nowhere")})
    out = tmp_path / "reproduce.json"
    code = script.main(["--pipelines", "toy-ce", "--seeds", "0", "1", "--work", str(tmp_path / "work"),
                           "--out", str(out), "--tolerance", "1"])
    assert code == 0
    row = json.loads(out.read_text())["toy-ce"]
    cache = Path(row["cache"])
    for seed in (0, 1):  # each seed's models in a cache of their own, trained with the seed shifted
        trained = json.loads(next((cache / f"seed-{seed}" / "models" / "reranker").glob("toy-ce-*/training.json"))
                             .read_text())
        assert trained["dataset"] == "toy" and trained["threads"] >= 1
        log = (tmp_path / "work" / "logs" / f"train-toy-ce-seed{seed}.log").read_text()
        assert f"train-reranker: seed {seed}, " in log
    figure, per_seed = row["ndcg_at_10"], row["per_seed"]
    values = [per_seed[str(s)]["ndcg_at_10"] for s in (0, 1)]
    assert figure["seeds"] == [0, 1] and figure["values"] == pytest.approx(values)
    assert figure["mean"] == pytest.approx(np.mean(values)) and figure["sd"] == pytest.approx(np.std(values, ddof=1))
    assert figure["single"] == pytest.approx(values[0]) and row["delta"] == pytest.approx(figure["mean"] - 0.5)
    first = [row["per_seed_first_stage"][str(s)]["ndcg_at_10"] for s in (0, 1)]
    gain = figure["over_first_stage"]
    assert gain["values"] == pytest.approx([v - f for v, f in zip(values, first)]) and 0 <= gain["p"] <= 1
    assert figure["over_bm25"]["mean"] == pytest.approx(figure["mean"] - row["bm25"]["ndcg_at_10"])
    assert row["command"].endswith(f"cache.dir={cache / 'seed-0'}")
