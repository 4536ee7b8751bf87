"""The recorded pipelines (each dataset's best, and those built on one) and the plan that reproduces them from cold:
the training commands their `requires` lists (retrieval_lab/training/recipes.py), once per model and seed, each seed
into a cache of its own with the recipes' `seed=` shifted by it, then the runs that evaluate each pipeline, its first
stage and the lab's default BM25. benchmarks/reproduce.py runs this plan (`--plan` prints it).
"""
from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

from retrieval_lab.config import compose_config
from retrieval_lab.errors import LabError
from retrieval_lab.training.recipes import Recipe, needed

DATASETS = ("scifact", "nfcorpus", "arguana", "cranfield")
# pipeline (experiments/<name>.yaml) -> its dataset, the figure it reproduces (test nDCG@10, all test queries) and
# where that was recorded: the one place reproduce.py reads it from (the yaml headers quote it;
# tests/unit/test_reproduce.py keeps them equal). Each dataset's best, then the pipelines built on one.
RECORDED = {
    "best-scifact": ("scifact", 0.7654, "BENCHMARKS.md, Hybrid, reranking, fine-tuning: Reranking, depth 50 "
                                        "interpolate 0.7"),
    "best-nfcorpus": ("nfcorpus", 0.3826, "experiments/README.md, Query expansion (RM3): chosen on dev "
                                          "(0.3762 before RM3)"),
    "best-arguana": ("arguana", 0.5873, "experiments/README.md, Best pipelines from cold: ties in trec_eval's order "
                                        "(0.5891 before)"),
    "best-cranfield": ("cranfield", 0.4232, "experiments/README.md, Best pipeline per dataset: all test queries"),
    "fast-scifact": ("scifact", 0.7566, "experiments/README.md, fast-scifact over seeds from cold: the mean of seeds "
                                         "0-2 (seed 0 alone 0.7660)"),
    "refit-scifact": ("scifact", 0.7616, "experiments/refit-scifact.yaml: best-scifact's settings, both models "
                                          "trained again on all training queries"),
}
PIPELINES = tuple(RECORDED)


def pipelines_of(datasets) -> list[str]:
    """The pipelines reproduced on `datasets`, in RECORDED order."""
    return [name for name, (dataset, _, _) in RECORDED.items() if dataset in datasets]


def pipeline_overrides(pipeline: str, cache: Path | None = None, on: str | None = None) -> list[str]:
    """`+experiments=<pipeline>` as `retrieval-lab run` takes it; `on`: evaluated on another dataset."""
    return [f"+experiments={pipeline}", *([f"dataset={on}"] if on else []), *([f"cache.dir={cache}"] if cache else [])]


def best_overrides(dataset: str, cache: Path | None = None, on: str | None = None) -> list[str]:
    """A dataset's best pipeline (`best-<dataset>`)."""
    return pipeline_overrides(f"best-{dataset}", cache, on)


def bm25_overrides(dataset: str, cache: Path | None = None) -> list[str]:
    """The lab's default BM25 (k1 0.9, b 0.4): every paired test's baseline."""
    return [f"dataset={dataset}", "retriever=bm25", *([f"cache.dir={cache}"] if cache else [])]


def recipes_of(pipelines) -> dict[str, list[Recipe]]:
    """pipeline -> the recipes it needs, in training order (retrieval_lab.training.recipes)."""
    return {p: needed(compose_config(pipeline_overrides(p))) for p in pipelines}


def seeded(recipe: Recipe, seed: int) -> Recipe:
    """The recipe with its `seed=` shifted by `seed` (seed 0: as written; a recipe without one gets seed=<seed>)."""
    shifted = [f"seed={int(o.split('=', 1)[1]) + seed}" if o.startswith("seed=") else o for o in recipe.overrides]
    if not any(o.startswith("seed=") for o in recipe.overrides):
        shifted.append(f"seed={seed}")
    return replace(recipe, overrides=tuple(shifted))


def seed_cache(cache: Path, seed: int) -> Path:
    """Where the models of one seed are trained and that seed's pipeline is evaluated."""
    return cache / f"seed-{seed}"


def reranks(pipeline: str) -> bool:
    """Whether the pipeline has a reranker (its gain over its own first stage is then reported)."""
    return compose_config(pipeline_overrides(pipeline)).reranker.get("name", "none") != "none"


def default_shared_cache() -> Path:
    return Path("~/.cache/retrieval-lab").expanduser().resolve()


def check_seeds(seeds) -> None:
    """Seeds are distinct and >= 0 (each trains into a cache of its own)."""
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise LabError(f"--seeds {' '.join(map(str, seeds))}: give distinct seeds >= 0, e.g. --seeds 0 1 2")


def check_cache(cache: Path) -> None:
    """A reproduction trains into an empty cache of its own, never the user's shared one."""
    if cache == default_shared_cache():
        raise LabError(f"--cache {cache} is the shared default cache: reproduce from an empty one (omit --cache)")


def plan_lines(pipelines, cache: Path, work: Path, seeds=(0,)) -> list[str]:
    """The commands benchmarks/reproduce.py runs, in order, as a user would type them."""
    lines, trained, baselines = [], set(), set()
    for pipeline, recipes in recipes_of(pipelines).items():
        dataset, recorded, where = RECORDED[pipeline]
        lines.append(f"# {pipeline}: recorded test nDCG@10 {recorded} ({where})")
        if not recipes:
            lines.append("# (no model to train: zoo models only; evaluated once)")
        for seed in (seeds if recipes else seeds[:1]):
            here = seed_cache(cache, seed)
            prefix = f"RETRIEVAL_LAB_CACHE={shlex.quote(str(here))} MLFLOW_TRACKING_URI=sqlite:///{work / 'mlflow.db'}"
            if recipes and len(seeds) > 1:
                lines.append(f"# seed {seed}")
            for recipe in recipes:
                if (recipe.model, seed) not in trained:
                    trained.add((recipe.model, seed))
                    lines.append(f"{prefix} {seeded(recipe, seed).command}")
            lines.append(shlex.join(["retrieval-lab", "run", *pipeline_overrides(pipeline, here)]))
            if recipes and reranks(pipeline):
                lines.append(shlex.join(["retrieval-lab", "run", *pipeline_overrides(pipeline, here), "reranker=none"])
                             + "   # its first stage: baseline of the reranker's gain")
        if dataset not in baselines:
            baselines.add(dataset)
            lines.append(shlex.join(["retrieval-lab", "run", *bm25_overrides(dataset, seed_cache(cache, seeds[0]))])
                         + "   # baseline of the paired test")
    return lines
