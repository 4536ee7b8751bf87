"""Trained models live in the cache; a name maps to one so `embedder=<name>` / `reranker=<name>` pick it up.

Names are recorded in the dense stage's model registry (`dense.embedders.register_model`, kind
`sentence_transformers` or `cross_encoder`), so every loader resolves them the same way. On top, `register` writes
the config group option `<cache>/conf/<group>/<name>.yaml` (the CLI puts `<cache>/conf` on Hydra's search path)
and keeps the training query ids in the model folder, so an evaluation on a split that shares a query with them is
refused (`check_not_trained_on`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.cache import default_cache_dir
from retrieval_lab.errors import LeakageError

GROUP_KIND = {"embedder": "sentence_transformers", "reranker": "cross_encoder"}


def models_root(cache_root: str | Path | None = None) -> Path:
    return Path(cache_root or default_cache_dir()).expanduser() / "models"


def user_conf_dir(cache_root: str | Path | None = None) -> Path:
    """Config group options written for registered models (on Hydra's search path, see cli.py)."""
    return Path(cache_root or default_cache_dir()).expanduser() / "conf"


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
    from retrieval_lab.dense.embedders import register_model

    register_model(name, folder, kind=GROUP_KIND[group], root=cache_root, info=meta or {})
    if config is not None:
        import yaml

        conf = user_conf_dir(cache_root) / group
        conf.mkdir(parents=True, exist_ok=True)
        header = f"# Written by `retrieval-lab train-{group}`: the model {Path(folder).name} in the cache's models/.\n"
        (conf / f"{name}.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    return TrainedModel(group, name, Path(folder), meta or {})


def lookup(group: str, name: str, cache_root: str | Path | None = None) -> TrainedModel | None:
    from retrieval_lab.dense.embedders import lookup_model

    record = lookup_model(name, cache_root)
    if record is None or record.get("kind") != GROUP_KIND[group]:
        return None
    return TrainedModel(group, name, Path(record["folder"]), record.get("info") or {})


def registered(group: str, cache_root: str | Path | None = None) -> dict[str, TrainedModel]:
    from retrieval_lab.dense.embedders import registered_models

    return {r["name"]: TrainedModel(group, r["name"], Path(r["folder"]), r.get("info") or {})
            for r in registered_models(cache_root) if r.get("kind") == GROUP_KIND[group]}


def check_not_trained_on(model: TrainedModel, dataset_name: str, split: str, query_ids) -> None:
    """Refuse to evaluate a model on queries it was trained on (same dataset, shared query ids)."""
    if model.dataset and model.dataset != dataset_name:
        return
    shared = model.training_query_ids & set(query_ids)
    if shared:
        raise LeakageError(
            f"{model.group} '{model.name}' was trained on {len(shared)} queries of {dataset_name} split '{split}' "
            f"(e.g. {sorted(shared)[:3]}): its scores there would be inflated. Evaluate on another split, or "
            f"train it with that split excluded (retrieval-lab train-{model.group} ... eval_splits=[{split}])")


def check_config_models(cfg, dataset_name: str, split: str, query_ids) -> None:
    """`check_not_trained_on` for every embedder / reranker model the run config names (any nesting)."""
    from retrieval_lab.config import to_container

    def walk(node, key=None):
        if isinstance(node, dict):
            if key in GROUP_KIND:
                for ref in {node.get("model"), node.get("name")} - {None}:
                    if isinstance(ref, str):
                        model = lookup(key, ref)
                        if model is not None:
                            check_not_trained_on(model, dataset_name, split, query_ids)
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(to_container(cfg))
