"""What both trainers share: `train_once` (content-keyed model folder, reuse, MLflow run, registration) and its
pieces: base model resolution, CPU threads, peak memory, atomic saves. A model's identity is the dense stage's
`weights_sha256` (models/hashing.py), the same hash the embeddings and score caches are keyed on."""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from retrieval_lab import tracking
from retrieval_lab.cache import content_key
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.models.registry import models_root, register
from retrieval_lab.models.resolve import resolve_model as resolve_spec
from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.training.data import TrainingQueries, data_hash, training_queries, write_heldout_split

log = logging.getLogger(__name__)


def resolve_model(name: str, cache_root: str | Path | None = None):
    """The `ModelSpec` (folder, weights_sha256) of a registered model, a zoo name, a local folder or a Hugging Face
    name, found as the dense stage finds it; only transformer bodies can be trained."""
    spec = resolve_spec(name, cache_root)
    if spec.kind not in ("sentence_transformers", "cross_encoder"):
        raise ModelNotFoundError(f"model '{name}' is a {spec.kind} model; training needs a transformer body "
                                 "(minilm_l6, a registered model, a local folder or a Hugging Face name)")
    return spec


def training_threads(threads: int) -> int:
    """The torch thread count a training runs on: `threads`, or torch's default (the machine's physical cores) for
    0. The count changes how float sums are split, so bit-identical weights need the same count."""
    import torch

    return threads if threads and threads > 0 else torch.get_num_threads()


def runtime(threads: int) -> dict:
    """What bit-identical weights depend on beyond the seed, settings and data: recorded in training.json."""
    import torch

    return {"threads": threads, "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@contextmanager
def deterministic(seed: int, threads: int):
    """Seed every generator a training draws from (Python's, numpy's, torch's: a fresh one-logit head and the
    pooler are initialized from torch's, whose start state differs from process to process), fix the torch thread
    count (stages run before the fit, such as mining negatives with a dense first stage, may change it), and use
    torch's deterministic algorithms; the thread count and the algorithm switch are restored afterwards."""
    import torch
    from transformers import set_seed

    before_threads, before_algorithms = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    set_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before_algorithms)
        torch.set_num_threads(before_threads)


def per_seed(cfg, dataset_name: str, kind: str) -> list:
    """`seeds=[0,1,2]`: the settings of one training per seed (seed=s), each registered as <name>-seed<s>."""
    from dataclasses import replace

    if not cfg.seeds:
        return [cfg]
    if len(set(cfg.seeds)) != len(cfg.seeds) or any(not isinstance(s, int) or s < 0 for s in cfg.seeds):
        raise ConfigError("seeds", f"expected distinct whole numbers >= 0, got {cfg.seeds}", "e.g. seeds=[0,1,2]")
    name = cfg.name or default_name(cfg.base, dataset_name, kind)
    return [replace(cfg, seed=s, seeds=None, name=f"{name}-seed{s}") for s in cfg.seeds]


def default_name(base: str, dataset_name: str, kind: str) -> str:
    return f"{base}-{dataset_name}-{'ft' if kind == 'embedder' else 'ce'}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loss_curve(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(int(row["step"]), float(row["loss"])) for row in log_history if "loss" in row and "step" in row]


def log_training_run(kind: str, name: str, params: dict, metrics: dict, curve: list[tuple[int, float]],
                     tags: dict, artifacts: dict[str, str] | None = None, experiment: str = "training") -> str | None:
    """One MLflow run per training: params, loss per step, final metrics, tags (data hash, dataset)."""
    if os.environ.get("RETRIEVAL_LAB_NO_TRACKING") == "1":
        return None
    from mlflow.entities import Metric

    client = tracking.client()
    experiment_id = tracking.ensure_experiment(experiment)
    run = client.create_run(experiment_id, run_name=f"train-{kind} {name}",
                            tags={"role": f"train_{kind}", "model_name": name, **{k: str(v) for k, v in tags.items()}})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    with tracking.finishing(client, run_id):
        tracking.log_params(client, run_id, tracking.flatten(params))
        rows = [Metric("train_loss", loss, now, step) for step, loss in curve]
        rows += [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        for start in range(0, len(rows), 900):
            client.log_batch(run_id, metrics=rows[start:start + 900])
        if artifacts:
            with tempfile.TemporaryDirectory() as tmp:
                for fname, text in artifacts.items():
                    (Path(tmp) / fname).write_text(text)
                client.log_artifacts(run_id, tmp)
    return run_id


def save_model(model, folder: Path) -> None:
    """Save into a temporary sibling, then rename: an interrupted save never leaves a folder that looks trained."""
    tmp_folder = folder.parent / f".tmp-{folder.name}"
    shutil.rmtree(tmp_folder, ignore_errors=True)
    tmp_folder.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(tmp_folder))
    if folder.exists():
        shutil.rmtree(folder)
    tmp_folder.rename(folder)


Fit = Callable[[str, list, Any, Path], dict]


def train_once(kind: str, dataset_node, cfg, build: Callable[[TrainingQueries, Any], list[tuple]], fit: Fit,
               count_rows: Callable[[list[tuple]], dict[str, int]], registry_config: Callable[[str], dict],
               cache_root: str | Path | None = None) -> dict:
    """Train a `kind` ("embedder" or "reranker") model on the rows `build(training queries, cfg)` makes from the
    configured split, with `fit(base_folder, rows, cfg, folder)`, or reuse the folder of the same training: it is
    keyed by (base weights, settings, training data), so asking twice costs nothing. Logs the run to MLflow, writes
    the held-out selection split, registers the model under `cfg.name` (default `<base>-<dataset>-ft|ce`) with
    `registry_config(name)` as its conf group entry; returns a summary."""
    cfg.validate()
    if cfg.seeds:
        raise ConfigError("seeds", "one training trains one seed", "train each of per_seed(cfg, dataset) in turn "
                                                                   "(retrieval-lab train-* seeds=[...] does)")
    if os.environ.get("RETRIEVAL_LAB_NO_TRACKING") != "1":
        tracking.check_store()  # an unusable store fails now, not after the training
    threads = training_threads(cfg.threads)
    _set_threads(threads)  # for the rows too: a teacher's logits or a dense first stage's negatives
    root = resolve_cache_root(cache_root)
    tq = training_queries(dataset_node, cfg.split, cfg.eval_splits, cfg.holdout, cfg.seed)
    base = resolve_model(cfg.base, root)  # before building rows: a wrong name fails fast
    base_folder, base_hash = str(base.path), base.weights_sha256
    rows = build(tq, cfg)
    counts = count_rows(rows)
    digest = data_hash(rows)
    name = cfg.name or default_name(cfg.base, tq.dataset.name, kind)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("name", "threads", "seeds")}
    identity = {"base": base_hash, "settings": settings, "data": digest}
    if kind == "reranker":  # one trained before its fresh head was seeded is not this seed's model: never reuse it
        identity["head"] = "seeded"
    key = content_key(f"train_{kind}", identity)
    folder = models_root(root) / kind / f"{name}-{key[:12]}"
    summary = {"name": name, "folder": str(folder), "dataset": tq.dataset.name, "split": cfg.split,
               "train_queries": len(tq.train), "heldout_queries": len(tq.heldout), **counts,
               "data_hash": digest, "base": cfg.base, "base_weights": base_hash[:16]}
    if (folder / "training.json").exists():
        log.info("%s %s already trained with these settings and data: %s", kind, name, folder)
        summary.update(json.loads((folder / "training.json").read_text()))
        summary["reused"] = True
    else:
        log.info("training %s %s: seed %d, %d torch threads, deterministic algorithms", kind, name, cfg.seed, threads)
        with deterministic(cfg.seed, threads):
            summary.update(fit(base_folder, rows, cfg, folder))
        summary.update(runtime(threads))
        summary["reused"] = False
        (folder / "training_queries.json").write_text(json.dumps(
            {"ids": tq.train.ids, "heldout": tq.heldout.ids, "split": cfg.split}))
        (folder / "training.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "reused"},
                                                         indent=1))
        summary["mlflow_run"] = log_training_run(
            kind, name, {**settings, **counts, "train_queries": len(tq.train), **runtime(threads)},
            {k: summary[k] for k in ("train_seconds", "peak_rss_mb", "final_loss", "first_loss", "pairs_per_second")},
            summary["curve"], {"dataset": tq.dataset.name, "split": cfg.split, "data_hash": digest[:16]},
            {"training.json": json.dumps(summary, indent=1)})
    heldout = write_heldout_split(tq, root)
    if heldout is not None:
        summary["select_with"] = f"dataset.path={heldout} dataset.split=heldout"
    register(kind, name, folder,
             {"dataset": tq.dataset.name, "split": cfg.split, "base": cfg.base, "data_hash": digest,
              "heldout": tq.heldout.ids},
             cache_root=root, config=registry_config(name))
    return summary
