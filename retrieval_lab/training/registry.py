"""Trained models live in the cache; a name maps to one so `embedder=<name>` / `reranker=<name>` pick it up.

Names are recorded in the dense stage's model registry (`dense.embedders.register_model`, kind
`sentence_transformers` or `cross_encoder`) under one cache root, so every loader resolves them the same way. On
top, `register` writes the config group option `<cache>/conf/<group>/<name>.yaml` (the CLI puts `<cache>/conf` of
the run's `cache.dir` on Hydra's search path) and keeps the training query ids in the model folder, so an
evaluation on a split that shares a query with them is refused (`check_not_trained_on`, which looks models up under
the run's `cache.dir`, where the dense stage and the reranker find them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retrieval_lab.config import to_container
from retrieval_lab.dense.embedders import lookup_model, register_model, registered_models
from retrieval_lab.errors import LeakageError
from retrieval_lab.paths import cache_root as resolve_cache_root, user_conf_dir

GROUP_KIND = {"embedder": "sentence_transformers", "reranker": "cross_encoder"}


def models_root(cache_root: str | Path | None = None) -> Path:
    return resolve_cache_root(cache_root) / "models"


@dataclass
class TrainedModel:
    group: str  # embedder | reranker
    name: str
    folder: Path
    meta: dict = field(default_factory=dict)

    @property
    def training_query_ids(self) -> set[str]:
        path = self.folder / "training_queries.json"
        return set(json.loads(path.read_text())["ids"]) if path.exists() else set()

    @property
    def dataset(self) -> str | None:
        return self.meta.get("dataset")


def register(group: str, name: str, folder: str | Path, meta: dict | None = None,
             cache_root: str | Path | None = None, config: dict | None = None) -> TrainedModel:
    """Record `folder` under `name`; `config` becomes the config group option `<group>=<name>`."""
    register_model(name, folder, kind=GROUP_KIND[group], root=cache_root, info=meta or {})
    if config is not None:
        conf = user_conf_dir(cache_root) / group
        conf.mkdir(parents=True, exist_ok=True)
        header = f"# Written by `retrieval-lab train-{group}`: the model {Path(folder).name} in the cache's models/.\n"
        (conf / f"{name}.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    return TrainedModel(group, name, Path(folder), meta or {})


def lookup(group: str, name: str, cache_root: str | Path | None = None) -> TrainedModel | None:
    record = lookup_model(name, cache_root)
    if record is None or record.get("kind") != GROUP_KIND[group]:
        return None
    return TrainedModel(group, name, Path(record["folder"]), record.get("info") or {})


def registered(group: str, cache_root: str | Path | None = None) -> dict[str, TrainedModel]:
    return {r["name"]: TrainedModel(group, r["name"], Path(r["folder"]), r.get("info") or {})
            for r in registered_models(cache_root) if r.get("kind") == GROUP_KIND[group]}


def trained_folder(group: str, ref: str) -> TrainedModel | None:
    """A model named by its folder rather than its registered name, when that folder was written by a trainer."""
    folder = Path(ref).expanduser()
    if not (folder / "training_queries.json").is_file():
        return None
    meta = json.loads((folder / "training.json").read_text()) if (folder / "training.json").is_file() else {}
    return TrainedModel(group, folder.name, folder, {"dataset": meta.get("dataset")})


def check_not_trained_on(model: TrainedModel, dataset_name: str, split: str, query_ids) -> None:
    """Refuse to evaluate a model on queries it was trained on (same dataset, shared query ids)."""
    if model.dataset and model.dataset != dataset_name:
        return
    shared = model.training_query_ids & set(query_ids)
    if shared:
        fix = ("evaluate it on a split it was not trained on (dataset.split=test)" if model.meta.get("split") == split
               else f"evaluate on another split, or train it with this one excluded (retrieval-lab "
                    f"train-{model.group} ... eval_splits=[{split}])")
        raise LeakageError(
            f"{model.group} '{model.name}' was trained on {len(shared)} queries of {dataset_name} split '{split}' "
            f"(e.g. {sorted(shared)[:3]}): its scores there would be inflated.\n  fix: {fix}")


def check_config_models(cfg, dataset_name: str, split: str, query_ids) -> None:
    """`check_not_trained_on` for every embedder / reranker model the run config names (any nesting), looked up in
    the registry under the run's `cache.dir`, where the run loads them from."""
    data = to_container(cfg)
    root = resolve_cache_root((data.get("cache") or {}).get("dir"))

    def walk(node, key=None):
        if isinstance(node, dict):
            if key in GROUP_KIND:
                for ref in {node.get("model"), node.get("name")} - {None}:
                    if isinstance(ref, str):
                        model = lookup(key, ref, root) or trained_folder(key, ref)
                        if model is not None:
                            check_not_trained_on(model, dataset_name, split, query_ids)
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(data)
