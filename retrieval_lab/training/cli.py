"""`retrieval-lab train-embedder|train-reranker key=value ...`: the trainer's primary config (conf/train_embedder.yaml,
conf/train_reranker.yaml) composed with Hydra, with the overrides of `run` (`dataset=nfcorpus`, `lr=5e-5`,
`eval_splits=[test,dev]`, `cache.dir=...`), then typed into the trainer's dataclass."""
from __future__ import annotations

import json
import logging
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from retrieval_lab.config import compose, to_container, typed
from retrieval_lab.paths import cache_root
from retrieval_lab.training.common import per_seed, training_threads
from retrieval_lab.training.embedder import EmbedderTrainConfig, train_embedder
from retrieval_lab.training.reranker import RerankerTrainConfig, train_reranker

log = logging.getLogger(__name__)

KINDS = ("embedder", "reranker")


# kind -> (settings dataclass, trainer)
TRAINERS = {"embedder": (EmbedderTrainConfig, train_embedder), "reranker": (RerankerTrainConfig, train_reranker)}


def trainer_class(kind: str) -> type:
    return TRAINERS[kind][0]


def train_config(kind: str, overrides: list[str] | tuple[str, ...] = ()) -> tuple[DictConfig, Any, str | None]:
    """(dataset node, trainer settings, cache.dir) of `retrieval-lab train-<kind> <overrides>`."""
    values = to_container(compose(f"train_{kind}", overrides))
    dataset = values.pop("dataset")
    cache_dir = (values.pop("cache") or {}).get("dir")
    return OmegaConf.create(dataset), typed(trainer_class(kind), values, ""), cache_dir


def main_train(kind: str, overrides: list[str]) -> int:
    train = TRAINERS[kind][1]
    dataset, settings, cache_dir = train_config(kind, overrides)
    threads = training_threads(settings.threads)
    runs = per_seed(settings, dataset.name, kind)
    for one in runs:
        print(f"train-{kind}: seed {one.seed}, {threads} torch threads, deterministic algorithms (the same weights "
              f"again need the same seed, settings, data, thread count, torch version and CPU kind)",
              file=sys.stderr, flush=True)
        summary = train(dataset, one, cache_root=cache_root(cache_dir))
        shown = {k: v for k, v in summary.items() if k != "curve"}
        print(json.dumps(shown, indent=1, default=str))
        where = f" cache.dir={cache_dir}" if cache_dir and cache_root(cache_dir) != cache_root() else ""
        data = f"dataset.path={dataset.path}" if dataset.get("path") else f"dataset={summary['dataset']}"
        print(f"use it with: retrieval-lab run {data} {kind}={summary['name']}{where}")
    return 0
