"""The `requires` recipes of a pipeline config (retrieval_lab/training/recipes.py) and benchmarks/reproduce.py's plan:
a missing trained model stops a run before any work and names the command that trains it; every planned training
command parses against its trainer's config; every planned run composes."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.training.cli import train_config
from retrieval_lab.training.recipes import check_required_models, missing, needed, recipes
from retrieval_lab.training.registry import register

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import reproduce  # noqa: E402

TRAINED_HERE = {"best-scifact": ["minilm_l6-scifact-ft", "ce-scifact-bce"],
                "best-nfcorpus": ["minilm_l6-nfcorpus-ft", "minilm_l6-nfcorpus-ft2"], "best-arguana": [],
                "best-cranfield": [], "fast-scifact": ["minilm_l6-scifact-ft", "ce-scifact-hyb", "ce-scifact-l3-hyb"]}


def config(requires: dict, embedder: str = "a-ft", reranker: str | None = None, **extra):
    node = {"requires": requires, "embedder": {"name": embedder, "model": embedder},
            "retriever": {"name": "dense"}, **extra}
    if reranker:
        node["reranker"] = {"name": reranker, "type": "cross_encoder", "model": reranker}
    return OmegaConf.create(node)


A = "retrieval-lab train-embedder dataset=scifact base=minilm_l6 seed=0 name=a-ft"
B = "retrieval-lab train-embedder dataset=scifact base=a-ft seed=1 name=b-ft"
C = "retrieval-lab train-reranker dataset=scifact base=a-ft loss=bce name=c-ce"


def test_needed_follows_bases_in_requires_order_and_only_for_loaded_models():
    cfg = config({"a-ft": A, "b-ft": B, "c-ce": C}, embedder="b-ft")
    assert [r.model for r in needed(cfg)] == ["a-ft", "b-ft"]  # b starts from a; the reranker is not loaded
    assert [r.model for r in needed(config({"a-ft": A, "b-ft": B, "c-ce": C}, "minilm_l6", "c-ce"))] == ["a-ft", "c-ce"]
    assert needed(config({"a-ft": A}, embedder="minilm_l6")) == []
    assert needed(config({"a-ft": A}), skip={"embedder"}) == []  # a group no stage reads
    assert recipes(config({"c-ce": C}))[0].kind == "reranker"
    # a distilled student needs its teacher trained first, though it starts from another body
    student = "retrieval-lab train-reranker base=a-ft loss=distill teacher=c-ce layers=3 name=s-ce"
    assert [r.model for r in needed(config({"a-ft": A, "b-ft": B, "c-ce": C, "s-ce": student}, "minilm_l6",
                                           "s-ce"))] == ["a-ft", "c-ce", "s-ce"]


def test_a_reranker_switched_off_needs_no_training(tmp_path):
    # `+experiments=best-scifact reranker=none` runs the first stage: only the embedder is needed
    cfg = compose_config(["+experiments=best-scifact", "reranker=none"])
    assert cfg.reranker.model == "ce-scifact-bce"  # the experiment's node is still there, switched off
    assert [r.model for r in needed(cfg)] == ["minilm_l6-scifact-ft"]
    folder = tmp_path / "a"
    folder.mkdir()
    register("embedder", "minilm_l6-scifact-ft", folder, cache_root=tmp_path)
    check_required_models(cfg, tmp_path)  # no error: the reranker it names is never loaded


def test_fast_scifact_loads_the_student_over_best_scifacts_first_stage():
    # its plan (embedder, teacher, student; not best-scifact's reranker) is in TRAINED_HERE, checked below
    cfg = compose_config(["+experiments=fast-scifact"])
    assert cfg.reranker.model == "ce-scifact-l3-hyb" and cfg.embedder.model == "minilm_l6-scifact-ft"


@pytest.mark.parametrize("command, complaint", [
    ("retrieval-lab run dataset=scifact name=a-ft", "expected a command"),
    ("train-embedder name=a-ft", "expected a command"),
    ("retrieval-lab train-embedder dataset=scifact", "does not register the model under this name"),
    ("retrieval-lab train-embedder name=other", "does not register the model under this name"),
])
def test_a_malformed_recipe_names_its_key(command, complaint):
    with pytest.raises(ConfigError, match=complaint) as err:
        recipes(config({"a-ft": command}))
    assert "requires.a-ft" in str(err.value)


def test_missing_models_are_named_with_their_commands_until_registered(tmp_path):
    cfg = config({"a-ft": A, "b-ft": B}, embedder="b-ft")
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError) as err:
        check_required_models(cfg, cache)
    text = str(err.value)
    assert "a-ft (embedder), b-ft (embedder)" in text
    assert text.index(A) < text.index(B)  # training order
    assert f"cache.dir={cache}" in text  # not the default cache: the commands must train into this one
    folder = tmp_path / "a"
    folder.mkdir()
    register("embedder", "a-ft", folder, cache_root=cache)
    assert [r.model for r in missing(cfg, cache)] == ["b-ft"]
    register("embedder", "b-ft", folder, cache_root=cache)
    check_required_models(cfg, cache)  # nothing missing: no error


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


@pytest.mark.parametrize("pipeline", reproduce.PIPELINES)
def test_the_plan_trains_what_each_pipeline_loads_with_valid_commands(pipeline, tmp_path):
    plan = reproduce.recipes_of([pipeline])[pipeline]
    assert [r.model for r in plan] == TRAINED_HERE[pipeline]  # each command parses: the test below
    dataset = reproduce.RECORDED[pipeline][0]
    cfg = compose_config(reproduce.pipeline_overrides(pipeline, tmp_path))
    assert cfg.dataset.name == dataset and cfg.cache.dir == str(tmp_path)
    assert compose_config(reproduce.bm25_overrides(dataset, tmp_path)).retriever.name == "bm25"
    lines = reproduce.plan_lines([pipeline], tmp_path / "cache", tmp_path)
    trains = [line for line in lines if " train-" in line]
    assert len(trains) == len(plan) and all(line.endswith(f" {r.command}") for line, r in zip(trains, plan))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (REPO / "experiments").glob("*.yaml")
                                                if "requires:" in p.read_text()))
def test_every_training_command_an_experiment_requires_parses(experiment):
    # every experiment's, not only RECORDED's (refit-scifact): reproduce.py and users run them as printed
    for recipe in recipes(compose_config([f"+experiments={experiment}"])):
        _, settings, _ = train_config(recipe.kind, list(recipe.overrides))  # parses and types, as the CLI does
        assert settings.name == recipe.model
        assert "seed=" in recipe.command  # seeded explicitly


def test_refit_scifact_trains_both_models_on_all_training_queries():
    cfg = compose_config(["+experiments=refit-scifact"])
    plan = needed(cfg)
    assert [r.model for r in plan] == ["minilm_l6-scifact-all", "ce-scifact-hyb-all"]  # not best-scifact's models
    assert all("holdout=0" in r.overrides for r in plan)
    assert "negatives_from=refit-scifact" in plan[1].overrides  # its own first stage's candidates
    assert cfg.reranker.interpolate == 0.6 and cfg.reranker.depth == 50  # the selection split's choice, kept


def test_datasets_select_their_pipelines_in_recorded_order():
    assert reproduce.pipelines_of(["scifact"]) == ["best-scifact", "fast-scifact"]
    assert reproduce.pipelines_of(["cranfield", "arguana"]) == ["best-arguana", "best-cranfield"]
    assert set(reproduce.pipelines_of(reproduce.DATASETS)) == set(reproduce.PIPELINES)


def test_the_plan_trains_a_model_once_and_never_in_the_shared_cache(tmp_path, capsys):
    lines = reproduce.plan_lines(reproduce.pipelines_of(["scifact", "nfcorpus"]), tmp_path / "cache", tmp_path)
    trains = [line for line in lines if " train-" in line]
    assert len(trains) == len(set(trains)) == 6  # minilm_l6-scifact-ft once for both SciFact pipelines
    assert all(line.startswith(f"RETRIEVAL_LAB_CACHE={tmp_path / 'cache' / 'seed-0'} ") for line in trains)
    with pytest.raises(SystemExit):
        reproduce.main(["--plan", "--cache", "~/.cache/retrieval-lab"])
    assert "shared default cache" in capsys.readouterr().err


@pytest.mark.parametrize("pipeline", ["best-scifact", "best-nfcorpus", "fast-scifact"])
def test_the_yaml_header_quotes_the_recorded_figure(pipeline):
    header = (REPO / "experiments" / f"{pipeline}.yaml").read_text()
    quoted = re.search(r"[Tt]est nDCG@10 ([0-9.]+)", header.replace("\n# ", " "))
    assert quoted and float(quoted.group(1)) == reproduce.RECORDED[pipeline][1]


def test_each_seed_trains_every_model_with_its_seed_shifted_into_a_cache_of_its_own(tmp_path):
    plain = reproduce.plan_lines(["fast-scifact"], tmp_path / "cache", tmp_path)
    lines = reproduce.plan_lines(["fast-scifact"], tmp_path / "cache", tmp_path, seeds=[0, 1, 2])
    trains = [line for line in lines if " train-" in line]
    assert len(trains) == 3 * 3  # embedder, teacher, student per seed
    for seed in (0, 1, 2):
        here = tmp_path / "cache" / f"seed-{seed}"
        mine = [line for line in trains if line.startswith(f"RETRIEVAL_LAB_CACHE={here} ")]
        assert len(mine) == 3 and all(f" seed={seed} " in line for line in mine)
        run = f"retrieval-lab run +experiments=fast-scifact cache.dir={here}"
        assert run in lines and f"{run} reranker=none   # its first stage: baseline of the reranker's gain" in lines
    # seed 0 runs the recorded commands as written
    assert [line for line in trains if "/seed-0 " in line] == [line for line in plain if " train-" in line]
    # a recipe seeded 1 (best-nfcorpus's second model) is shifted, not overwritten; one without a seed gets one
    (recipe,) = [r for r in reproduce.recipes_of(["best-nfcorpus"])["best-nfcorpus"] if "seed=1" in r.overrides]
    assert "seed=3" in reproduce.seeded(recipe, 2).overrides and reproduce.seeded(recipe, 0) == recipe
    from retrieval_lab.training.recipes import Recipe

    assert reproduce.seeded(Recipe("m", "embedder", ("name=m",)), 2).overrides == ("name=m", "seed=2")
    # no model to train: evaluated once, whatever the seeds
    nothing = reproduce.plan_lines(["best-arguana"], tmp_path / "cache", tmp_path, seeds=[0, 1, 2])
    assert sum(line.startswith("retrieval-lab run +experiments=best-arguana") for line in nothing) == 1


def test_seeds_must_be_distinct(capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--plan", "--seeds", "0", "0"])
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
        "reranker:\n  name: toy-ce\n  model: toy-ce\n  depth: 5\n  max_length: 32\n  interpolate: 0.5\n"
        "tracking:\n  experiment: toy-ce\n")
    monkeypatch.setenv("RETRIEVAL_LAB_CONFIG", str(config))
    monkeypatch.setattr(reproduce, "RECORDED", {"toy-ce": ("toy", 0.5, "nowhere")})
    out = tmp_path / "reproduce.json"
    code = reproduce.main(["--pipelines", "toy-ce", "--seeds", "0", "1", "--work", str(tmp_path / "work"),
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
