"""Models a pipeline loads that only a training run here makes, and the commands that train them.

A config's `requires` node maps each such model name to the `retrieval-lab train-embedder|train-reranker ...` command
that trains and registers it, seeded, in training order (experiments/best-scifact.yaml). It is the one place those
commands live: `check_required_models` stops a run before any data is read when a model it loads is missing from the
run's cache and prints them, and benchmarks/reproduce.py runs them into a fresh cache.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from retrieval_lab.config import to_container
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.models.registry import GROUP_KIND, lookup

REQUIRES = "requires"


@dataclass(frozen=True)
class Recipe:
    model: str
    kind: str  # embedder | reranker
    overrides: tuple[str, ...]  # of `retrieval-lab train-<kind>`

    @property
    def command(self) -> str:
        return shlex.join(["retrieval-lab", f"train-{self.kind}", *self.overrides])

    @property
    def inputs(self) -> list[str]:
        """The models its training starts from (`base=`) or learns from (`teacher=`)."""
        return [o.split("=", 1)[1] for o in self.overrides if o.startswith(("base=", "teacher="))]


def recipes(cfg) -> list[Recipe]:
    """The `requires` node as recipes, in its order; a malformed entry is a ConfigError naming it."""
    node = to_container(cfg.get(REQUIRES) if hasattr(cfg, "get") else None) or {}
    if not isinstance(node, dict):
        raise ConfigError(REQUIRES, f"expected a mapping of model name -> training command, got {node!r}")
    out = []
    for model, command in node.items():
        key = f"{REQUIRES}.{model}"
        words = shlex.split(command) if isinstance(command, str) else []
        kinds = [f"train-{kind}" for kind in GROUP_KIND]
        if words[:1] != ["retrieval-lab"] or len(words) < 2 or words[1] not in kinds:
            raise ConfigError(key, f"expected a command `retrieval-lab {'|'.join(kinds)} key=value ...`, got "
                                   f"{command!r}")
        overrides = tuple(words[2:])
        if f"name={model}" not in overrides:
            raise ConfigError(key, "the command does not register the model under this name",
                              f"add name={model} to it")
        out.append(Recipe(str(model), words[1].removeprefix("train-"), overrides))
    return out


def loaded_models(cfg, skip: set[str] = frozenset()) -> set[str]:
    """Every model reference under an `embedder` or `reranker` node of the config (any nesting), but in the
    top-level groups `skip` (those no stage reads: `pipeline.build.unused_config_groups`) and in nodes switched off
    (`name: none`: `+experiments=best-scifact reranker=none` runs the first stage alone)."""
    found: set[str] = set()

    def walk(node, key=None):
        if isinstance(node, dict):
            if key in GROUP_KIND and node.get("name") == "none":
                return
            if key in GROUP_KIND and isinstance(node.get("model"), str):
                found.add(node["model"])
            for k, v in node.items():
                if k != REQUIRES:
                    walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk({k: v for k, v in to_container(cfg).items() if k not in skip})
    return found


def needed(cfg, skip: set[str] = frozenset()) -> list[Recipe]:
    """The recipes of the models the config loads, with those their training needs (`base=`, `teacher=`), in
    `requires` order."""
    by_model = {r.model: r for r in recipes(cfg)}
    wanted = set()
    todo = [m for m in loaded_models(cfg, skip) if m in by_model]
    while todo:
        model = todo.pop()
        if model not in wanted:
            wanted.add(model)
            todo.extend(m for m in by_model[model].inputs if m in by_model)
    return [r for r in by_model.values() if r.model in wanted]


def missing(cfg, cache_dir: str | Path | None = None, skip: set[str] = frozenset()) -> list[Recipe]:
    """Needed recipes whose model is neither registered under the cache root nor an existing folder."""
    root = resolve_cache_root(cache_dir)
    return [r for r in needed(cfg, skip) if lookup(r.kind, r.model, root) is None and not Path(r.model).expanduser().exists()]


def check_required_models(cfg, cache_dir: str | Path | None = None, skip: set[str] = frozenset()) -> None:
    """Stop a run whose config loads a model of its `requires` list that is not trained yet, naming the commands."""
    absent = missing(cfg, cache_dir, skip)
    if not absent:
        return
    root = resolve_cache_root(cache_dir)
    where = "" if root == resolve_cache_root() else f" cache.dir={shlex.quote(str(root))}"
    names = ", ".join(f"{r.model} ({r.kind})" for r in absent)
    commands = "\n".join(f"    {r.command}{where}" for r in absent)
    raise ModelNotFoundError(
        f"this pipeline loads models trained here that are not in the cache {root}: {names}\n"
        f"  fix: train them with the config's `{REQUIRES}` commands, in this order, then run again:\n{commands}")
