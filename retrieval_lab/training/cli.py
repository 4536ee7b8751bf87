"""`retrieval-lab train-embedder|train-reranker key=value ...`: overrides in the style of `run`, without Hydra jobs.

`dataset=<name>` picks `conf/dataset/<name>.yaml` (and `dataset.<key>=v` changes one of its values); every other
`key=value` sets a field of the trainer's config dataclass, with YAML values (`eval_splits=[test,dev]`, `lr=5e-5`).
"""
from __future__ import annotations

import json
import logging

import yaml
from omegaconf import OmegaConf

from retrieval_lab.config import typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.paths import conf_dir

log = logging.getLogger(__name__)


def parse_overrides(overrides: list[str], cls):
    dataset = "scifact"
    dataset_values, values = [], {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "expected key=value", "e.g. dataset=scifact split=train base=minilm_l6")
        key, raw = item.split("=", 1)
        key = key.lstrip("+")
        if key == "dataset":
            dataset = raw
        elif key.startswith("dataset."):
            dataset_values.append(f"{key[len('dataset.'):]}={raw}")
        else:
            values[key] = yaml.safe_load(raw) if raw != "" else None
            if isinstance(values[key], str):  # PyYAML reads 5e-5 (no dot) as a string
                try:
                    values[key] = float(values[key])
                except ValueError:
                    pass
    path = conf_dir() / "dataset" / f"{dataset}.yaml"
    if not path.exists():
        raise ConfigError("dataset", f"unknown dataset '{dataset}': no {path.name} in conf/dataset/")
    node = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(dataset_values))
    node = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    return node, typed(cls, values, "train")


def main_train(kind: str, overrides: list[str]) -> int:
    if kind == "embedder":
        from retrieval_lab.training.embedder import EmbedderTrainConfig as Config, train_embedder as train
    else:
        from retrieval_lab.training.reranker import RerankerTrainConfig as Config, train_reranker as train
    node, cfg = parse_overrides(overrides, Config)
    summary = train(node, cfg)
    shown = {k: v for k, v in summary.items() if k != "curve"}
    print(json.dumps(shown, indent=1, default=str))
    print(f"use it with: retrieval-lab run dataset={summary['dataset']} {kind}={summary['name']}")
    return 0
