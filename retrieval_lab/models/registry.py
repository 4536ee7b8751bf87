"""One registry of local models: a name maps to a folder, so `embedder=<name>` / `reranker=<name>` pick it up.

Records are `<cache>/models/registry/<name>.json` ({name, folder, kind, registered, info}), one cache root per run
(`register_model`, `lookup_model`, `registered_models`). Trainers call `register`, which on top writes the config
group option `<cache>/conf/<group>/<name>.yaml` (the CLI puts `<cache>/conf` of the run's `cache.dir` on Hydra's
search path); the trainer keeps the training query ids in the model folder, so an evaluation on a split that shares
a query with them is refused (`check_not_trained_on`, which looks models up under the run's `cache.dir`, where the
dense stage and the reranker find them).
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retrieval_lab.config import to_container
from retrieval_lab.errors import ConfigError, LeakageError, ModelNotFoundError
from retrieval_lab.models.spec import KINDS
from retrieval_lab.models.zoo import ZOO
from retrieval_lab.paths import cache_root as resolve_cache_root, user_conf_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def models_root(cache_root: str | Path | None = None) -> Path:
    """Where fine-tuned models are saved by convention: `<cache>/models/<name>/`."""
    return resolve_cache_root(cache_root) / "models"


def _registry_dir(root: str | Path | None = None) -> Path:
    return models_root(root) / "registry"


def register_model(name: str, folder: str | Path, kind: str = "sentence_transformers",
                   root: str | Path | None = None, info: dict | None = None) -> Path:
    """Make `name` resolve to a local model folder for every run using this cache (e.g. a fine-tuned MiniLM saved
    under `<cache>/models/<name>/`). `kind`: sentence_transformers (bi-encoder) or cross_encoder. Returns the
    registry file. Re-registering a name replaces it (the identity follows the weights' hash, not the name)."""
    if not _NAME.match(name) or name in ZOO:
        raise ConfigError("model", f"cannot register '{name}'",
                          "use letters, digits, '_', '-', '.'; zoo names are reserved")
    if kind not in KINDS:
        raise ConfigError("model.kind", f"unknown kind '{kind}'", f"use one of {', '.join(KINDS)}")
    folder = Path(folder).expanduser().resolve()
    if not folder.exists():
        raise ModelNotFoundError(f"cannot register '{name}': no folder at {folder}")
    target = _registry_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "folder": str(folder), "kind": kind, "registered": time.time(), "info": info or {}}
    tmp = target / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, target / f"{name}.json")
    return target / f"{name}.json"


def lookup_model(name: str, root: str | Path | None = None) -> dict | None:
    """The registry record for `name` ({name, folder, kind, registered, info}) or None."""
    if not _NAME.match(name or ""):
        return None
    path = _registry_dir(root) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def registered_models(root: str | Path | None = None) -> list[dict]:
    folder = _registry_dir(root)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


# ------------------------------------------------------------------------------- trained models, by config group

GROUP_KIND = {"embedder": "sentence_transformers", "reranker": "cross_encoder"}


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
