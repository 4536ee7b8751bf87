"""`retrieval-lab train-reranker`: a cross-encoder (one relevance logit) trained from an encoder body.

No trained cross-encoder loads offline here, so the lab builds one: the body of a bundled or fine-tuned bi-encoder
(`base=minilm_l6`, or `base=<registered embedder>`) plus a fresh one-logit head, trained on the split's judged
queries with BM25-mined hard negatives. Two losses:
  * `mnrl` (default): softmax over the positive, `negatives` mined negatives and `in_batch` other passages of the
    batch (a listwise/contrastive objective, as used to train rerankers on small data);
  * `bce`: pointwise binary cross-entropy on (query, passage, 0/1).
`head_lr` gives the fresh head (classifier + pooler) its own, larger learning rate: at the body's 2e-5 a fresh head
barely moves in one short epoch (the loss stays at a constant predictor's, see FIELD-NOTES).
"""
from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from retrieval_lab.cache import content_key, default_cache_dir
from retrieval_lab.errors import ConfigError
from retrieval_lab.training.common import (log_training_run, loss_curve, peak_rss_mb, resolve_model, set_threads,
                                           weights_hash)
from retrieval_lab.training.data import write_heldout_split, data_hash, training_queries
from retrieval_lab.training.embedder import bm25_negatives, passage_texts, positives
from retrieval_lab.training.registry import models_root, register

log = logging.getLogger(__name__)

LOSSES = ("mnrl", "bce")


@dataclass
class RerankerTrainConfig:
    name: str | None = None  # registered name (default <base>-<dataset>-ce)
    base: str = "minilm_l6"  # encoder body: bundled short name, registered embedder/reranker, folder, HF name
    split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    holdout: float = 0.0
    seed: int = 0
    loss: str = "mnrl"
    negatives: int = 3  # BM25-mined negatives per positive
    negative_depth: int = 30
    in_batch: int = 2  # mnrl: other passages of the batch used as extra negatives
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 5e-5
    head_lr: float | None = 1e-3  # classifier + pooler; null: same as lr
    warmup: float = 0.1
    max_length: int = 256  # tokens of query + passage
    min_grade: int = 1
    max_positives_per_query: int = 1
    max_rows: int = 0  # 0 = all (tests use a handful)
    threads: int = 0

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError("loss", f"unknown loss '{self.loss}'", f"use one of {', '.join(LOSSES)}")
        for key in ("epochs", "batch_size", "lr", "max_length"):
            if not getattr(self, key) > 0:
                raise ConfigError(key, f"must be > 0, got {getattr(self, key)}")
        if self.negatives < 0 or (self.loss == "bce" and self.negatives == 0):
            raise ConfigError("negatives", "bce needs at least one negative per positive")
        if self.negative_depth < self.negatives:
            raise ConfigError("negative_depth", f"must be >= negatives ({self.negatives})")


def build_rows(tq, cfg: RerankerTrainConfig) -> list[tuple]:
    """mnrl: (query, positive, negative...) rows; bce: (query, passage, label) rows. Shuffled with the seed."""
    _, text_of = passage_texts(tq)
    rng = random.Random(cfg.seed)
    pos = positives(tq, cfg.min_grade, cfg.max_positives_per_query, cfg.seed)
    negs = bm25_negatives(tq, cfg.negative_depth) if cfg.negatives else {}
    rows = []
    for qid, qtext in zip(tq.train.ids, tq.train.texts):
        pool = negs.get(qid, [])
        for doc in pos[qid]:
            if len(pool) < cfg.negatives:
                continue
            sampled = rng.sample(pool, cfg.negatives)
            if cfg.loss == "mnrl":
                rows.append((qtext, text_of[doc], *(text_of[d] for d in sampled)))
            else:
                rows.append((qtext, text_of[doc], 1.0))
                rows.extend((qtext, text_of[d], 0.0) for d in sampled)
    rng.shuffle(rows)
    if cfg.max_rows:
        rows = rows[:cfg.max_rows]
    if not rows:
        raise ConfigError("split", f"no training rows from split '{cfg.split}'")
    return rows


def _dataset(rows: list[tuple], loss: str):
    from datasets import Dataset as HFDataset

    if loss == "bce":
        return HFDataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                                    "label": [float(r[2]) for r in rows]})
    columns = ["query", "positive"] + [f"negative_{i}" for i in range(len(rows[0]) - 2)]
    return HFDataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(columns)})


def train_reranker(dataset_node, cfg: RerankerTrainConfig, cache_root: str | Path | None = None) -> dict:
    cfg.validate()
    set_threads(cfg.threads)
    tq = training_queries(dataset_node, cfg.split, cfg.eval_splits, cfg.holdout, cfg.seed)
    base_folder = resolve_model(cfg.base, "reranker")
    base_hash = weights_hash(base_folder)
    rows = build_rows(tq, cfg)
    digest = data_hash(rows)
    name = cfg.name or f"{cfg.base}-{tq.dataset.name}-ce"
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("name", "threads")}
    key = content_key("train_reranker", {"base": base_hash, "settings": settings, "data": digest})
    root = Path(cache_root or default_cache_dir()).expanduser()
    folder = models_root(root) / "reranker" / f"{name}-{key[:12]}"
    summary = {"name": name, "folder": str(folder), "dataset": tq.dataset.name, "split": cfg.split,
               "train_queries": len(tq.train), "heldout_queries": len(tq.heldout), "rows": len(rows),
               "pairs": len(rows) * ((1 + cfg.negatives + cfg.in_batch) if cfg.loss == "mnrl" else 1),
               "data_hash": digest, "base": cfg.base, "base_weights": base_hash[:16]}
    if (folder / "training.json").exists():
        summary.update(json.loads((folder / "training.json").read_text()))
        summary["reused"] = True
    else:
        summary.update(_fit(base_folder, rows, cfg, folder))
        summary["reused"] = False
        (folder / "training_queries.json").write_text(json.dumps(
            {"ids": tq.train.ids, "heldout": tq.heldout.ids, "split": cfg.split}))
        (folder / "training.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "reused"},
                                                         indent=1))
        summary["mlflow_run"] = log_training_run(
            "reranker", name, {**settings, "rows": len(rows), "train_queries": len(tq.train)},
            {k: summary[k] for k in ("train_seconds", "peak_rss_mb", "final_loss", "first_loss", "pairs_per_second")},
            summary["curve"], {"dataset": tq.dataset.name, "split": cfg.split, "data_hash": digest[:16]},
            {"training.json": json.dumps(summary, indent=1)})
    heldout = write_heldout_split(tq, root)
    if heldout is not None:
        summary["select_with"] = f"dataset.path={heldout} dataset.split=heldout"
    register("reranker", name, folder,
             {"dataset": tq.dataset.name, "split": cfg.split, "base": cfg.base, "data_hash": digest,
              "heldout": tq.heldout.ids},
             cache_root=root, config={"name": name, "type": "cross_encoder", "model": name, "depth": 20,
                                      "batch_size": 32, "max_length": cfg.max_length, "interpolate": 0.0,
                                      "threads": None})
    return summary


def _optimizers(model, cfg: RerankerTrainConfig, steps: int):
    """AdamW with the fresh head (classifier, pooler) at `head_lr` and the body at `lr`; linear warmup/decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    head, body = [], []
    for pname, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (head if ("classifier" in pname or "pooler" in pname) else body).append(param)
    optimizer = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
                                  weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * steps), steps)
    return optimizer, scheduler


def _fit(base_folder: str, rows: list[tuple], cfg: RerankerTrainConfig, folder: Path) -> dict:
    import tempfile

    from sentence_transformers import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder import losses

    model = CrossEncoder(base_folder, num_labels=1, max_length=cfg.max_length, device="cpu")
    if cfg.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model, num_negatives=cfg.in_batch)
    else:
        loss = losses.BinaryCrossEntropyLoss(model)
    data = _dataset(rows, cfg.loss)
    steps = max(1, int(len(rows) / cfg.batch_size * cfg.epochs + 0.999))
    with tempfile.TemporaryDirectory() as tmp:
        args = CrossEncoderTrainingArguments(
            output_dir=tmp, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr, warmup_steps=cfg.warmup, logging_steps=max(1, steps // 25), save_strategy="no",
            report_to=[], seed=cfg.seed, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
        optimizers = _optimizers(model, cfg, steps) if cfg.head_lr else (None, None)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss, optimizers=optimizers)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        curve = loss_curve(trainer.state.log_history)
    tmp_folder = folder.parent / f".tmp-{folder.name}"
    shutil.rmtree(tmp_folder, ignore_errors=True)
    tmp_folder.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(tmp_folder))
    if folder.exists():
        shutil.rmtree(folder)
    tmp_folder.rename(folder)
    pairs = len(rows) * cfg.epochs * ((1 + cfg.negatives + cfg.in_batch) if cfg.loss == "mnrl" else 1)
    return {"train_seconds": seconds, "steps": trainer.state.global_step, "curve": curve,
            "first_loss": curve[0][1] if curve else None, "final_loss": curve[-1][1] if curve else None,
            "pairs_per_second": pairs / max(seconds, 1e-9), "peak_rss_mb": peak_rss_mb()}
