"""`retrieval-lab train-embedder|train-reranker key=value ...`: the trainer's primary config (conf/train_embedder.yaml,
conf/train_reranker.yaml) composed with Hydra, with the overrides of `run` (`dataset=nfcorpus`, `lr=5e-5`,
`eval_splits=[test,dev]`, `cache.dir=...`), then typed into the trainer's dataclass."""
from __future__ import annotations

import json
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from retrieval_lab.config import compose, compose_config, to_container, typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.paths import cache_root, study_dirs
from retrieval_lab.training.common import per_seed, training_threads
from retrieval_lab.training.data import TrainingQueries
from retrieval_lab.training.embedder import EmbedderTrainConfig, train_embedder
from retrieval_lab.training.reranker import RerankerTrainConfig, train_reranker

log = logging.getLogger(__name__)

KINDS = ("embedder", "reranker")


def experiment_first_stage(experiment: str, tq: TrainingQueries, depth: int,
                           cache_dir: str | Path | None = None) -> dict[str, list[tuple[str, float]]]:
    """Per training query, the top-`depth` (document, score) of `experiment`'s first stage (reranker off), run on the
    training queries with the lab's own pipeline and caches: the candidates `negatives_from=<experiment>` mines."""
    from retrieval_lab.pipeline import Retriever

    known = sorted(p.stem for folder in study_dirs() for p in folder.glob("*.yaml"))
    if experiment not in known:
        raise ConfigError("negatives_from", f"no experiment '{experiment}'", f"use bm25 or one of: {', '.join(known)}")
    overrides = [f"+experiments={experiment}", "reranker.name=none",
                 "tracking.enabled=false"]
    if cache_dir is not None:
        overrides.append(f"cache.dir={cache_dir}")
    cfg = compose_config(overrides)
    if cfg.dataset.name != tq.dataset.name:
        raise ConfigError("negatives_from", f"experiment '{experiment}' runs on dataset '{cfg.dataset.name}', the "
                                            f"training data is '{tq.dataset.name}'",
                          f"name an experiment over {tq.dataset.name}, or use bm25")
    if cfg.eval.depth < depth:
        cfg.eval.depth = depth
    trace = Retriever(cfg, tq.dataset.corpus).retrieve(tq.train)
    return {qid: list(trace.documents.get(qid, [])) for qid in tq.train.ids}


# kind -> (settings dataclass, trainer); the reranker's negatives may come from an experiment's first stage, which
# this command composes with the trainer (training sits below the pipeline)
TRAINERS = {"embedder": (EmbedderTrainConfig, train_embedder),
            "reranker": (RerankerTrainConfig, partial(train_reranker, first_stage=experiment_first_stage))}


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
