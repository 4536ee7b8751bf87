"""The `requires` recipes of a pipeline config (retrieval_lab/training/recipes.py) and the plan benchmarks/reproduce.py
runs (retrieval_lab/training/reproduce.py): a missing trained model stops a run before any work and names the command
that trains it; every planned training command parses against its trainer's config; every planned run composes. The
script itself, and runs on the real SciFact: tests/integration/test_reproduce_real.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from retrieval_lab.commands.train import train_config
from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError, LabError, ModelNotFoundError
from retrieval_lab.training import reproduce
from retrieval_lab.training.recipes import check_required_models, missing, needed, recipes
from retrieval_lab.models.registry import register

REPO = Path(__file__).resolve().parents[2]

TRAINED_HERE = {"best-scifact": ["minilm_l6-scifact-ft", "ce-scifact-bce"],
                "best-nfcorpus": ["minilm_l6-nfcorpus-ft", "minilm_l6-nfcorpus-ft2"], "best-arguana": [],
                "best-cranfield": [], "fast-scifact": ["minilm_l6-scifact-ft", "ce-scifact-hyb", "ce-scifact-l3-hyb"],
                "refit-scifact": ["minilm_l6-scifact-all", "ce-scifact-hyb-all"]}


def config(requires: dict, embedder: str = "a-ft", reranker: str | None = None, **extra):
    node = {"requires": requires, "embedder": {"name": embedder, "model": embedder},
            "retriever": {"name": "dense"}, **extra}
    if reranker:
        node["reranker"] = {"name": "cross_encoder", "model": reranker}
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
    assert reproduce.pipelines_of(["scifact"]) == ["best-scifact", "fast-scifact", "refit-scifact"]
    assert reproduce.pipelines_of(["cranfield", "arguana"]) == ["best-arguana", "best-cranfield"]
    assert set(reproduce.pipelines_of(reproduce.DATASETS)) == set(reproduce.PIPELINES)


def test_the_plan_trains_a_model_once_and_never_in_the_shared_cache(tmp_path):
    lines = reproduce.plan_lines(reproduce.pipelines_of(["scifact", "nfcorpus"]), tmp_path / "cache", tmp_path)
    trains = [line for line in lines if " train-" in line]
    # minilm_l6-scifact-ft once for best- and fast-scifact; refit-scifact trains its own two
    assert len(trains) == len(set(trains)) == 8
    assert all(line.startswith(f"RETRIEVAL_LAB_CACHE={tmp_path / 'cache' / 'seed-0'} ") for line in trains)
    with pytest.raises(LabError, match="is the shared default cache"):
        reproduce.check_cache(Path("~/.cache/retrieval-lab").expanduser().resolve())
    reproduce.check_cache(tmp_path / "cache")  # a fresh one


@pytest.mark.parametrize("pipeline", [p for p in reproduce.PIPELINES if TRAINED_HERE[p]])
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


def test_seeds_must_be_distinct():
    for seeds in ([0, 0], [1, -1]):
        with pytest.raises(LabError, match="give distinct seeds"):
            reproduce.check_seeds(seeds)
    reproduce.check_seeds([0, 1, 2])
