"""`retrieval-lab train-reranker`: a cross-encoder (one relevance logit) trained from an encoder body.

No trained cross-encoder loads offline here, so the lab builds one: the body of a bundled or fine-tuned bi-encoder
(`base=minilm_l6`, or `base=<registered embedder>`) plus a fresh one-logit head, trained on the split's judged
queries with hard negatives: unjudged documents from the BM25 top `negative_depth`, or from the first stage of an
experiment (`negatives_from=best-scifact`: the candidates the reranker will be asked to order). Three losses:
  * `mnrl` (default): softmax over the positive, `negatives` mined negatives and `in_batch` other passages of the
    batch (a listwise/contrastive objective, as used to train rerankers on small data);
  * `bce`: pointwise binary cross-entropy on (query, passage, 0/1);
  * `distill`: the same (query, passage) pairs as `bce`, labelled with a trained cross-encoder's logits
    (`teacher=<registered reranker>`) and fitted by mean squared error: a smaller student (`layers=3` keeps the
    body's first three transformer layers) learns the teacher's scores, at a fraction of its cost per pair.
`head_lr` gives the fresh head (classifier + pooler) its own, larger learning rate: at the body's 2e-5 a fresh head
barely moves in one short epoch (the loss stays at a constant predictor's, see FIELD-NOTES).
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.cache import Cache
from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError
from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.training.common import loss_curve, peak_rss_mb, resolve_model, save_model, train_once
from retrieval_lab.training.data import data_hash
from retrieval_lab.training.embedder import passage_texts, positives
from retrieval_lab.training.negatives import FirstStageRanking, mine_negatives

log = logging.getLogger(__name__)

LOSSES = ("mnrl", "bce", "distill")


@dataclass
class RerankerTrainConfig:
    name: str | None = None  # registered name (default <base>-<dataset>-ce)
    base: str = "minilm_l6"  # encoder body: bundled short name, registered embedder/reranker, folder, HF name
    split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    holdout: float = 0.0
    seed: int = 0
    loss: str = "mnrl"
    negatives: int = 3  # mined negatives per positive
    negative_depth: int = 30  # sampled from the top-N unjudged documents of `negatives_from`
    negatives_from: str = "bm25"  # bm25, or an experiment whose first stage (reranker off) ranks the candidates
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
    seeds: list[int] | None = None  # several seeds: one model per seed, registered as <name>-seed<s>
    layers: int = 0  # keep the body's first N transformer layers (0 = all): a shallower, cheaper reranker
    teacher: str | None = None  # loss=distill: the registered cross-encoder whose logits are the labels

    def validate(self) -> None:
        check_choice("loss", self.loss, LOSSES)
        for key in ("epochs", "batch_size", "lr", "max_length"):
            if not getattr(self, key) > 0:
                raise ConfigError(key, f"must be > 0, got {getattr(self, key)}")
        if self.negatives < 0 or (self.loss != "mnrl" and self.negatives == 0):
            raise ConfigError("negatives", f"{self.loss} needs at least one negative per positive")
        if self.layers < 0:
            raise ConfigError("layers", f"must be >= 0 (0 keeps every layer), got {self.layers}")
        if (self.loss == "distill") != bool(self.teacher):
            raise ConfigError("teacher", "loss=distill needs teacher=<registered reranker>, and only it uses one",
                              "set both (loss=distill teacher=ce-scifact-bce) or neither")
        if self.negative_depth < self.negatives:
            raise ConfigError("negative_depth", f"must be >= negatives ({self.negatives})")
        if not self.negatives_from:
            raise ConfigError("negatives_from", "is empty", "use bm25 or an experiment name (best-scifact)")


def build_rows(tq, cfg: RerankerTrainConfig, cache_root: str | Path | None = None,
               first_stage: FirstStageRanking | None = None) -> list[tuple]:
    """mnrl: (query, positive, negative...) rows; bce: (query, passage, 0/1) rows; distill: bce's pairs labelled
    with the teacher's logits. Shuffled with the seed. `first_stage` ranks the candidates of `negatives_from=<an
    experiment>` (the `train-reranker` command passes the pipeline's)."""
    _, text_of = passage_texts(tq)
    rng = random.Random(cfg.seed)
    pos = positives(tq, cfg.min_grade, cfg.max_positives_per_query, cfg.seed)
    negs = (mine_negatives(tq, cfg.negatives_from, cfg.negative_depth, cache_root, first_stage)
            if cfg.negatives else {})
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
    if cfg.loss == "distill":
        logits = teacher_logits(cfg.teacher, [(r[0], r[1]) for r in rows], cfg.max_length, cache_root)
        rows = [(q, passage, float(logit)) for (q, passage, _), logit in zip(rows, logits)]
    return rows


def teacher_logits(teacher: str, pairs: list[tuple[str, str]], max_length: int, cache_root) -> list[float]:
    """The teacher cross-encoder's raw logits (no activation) for `pairs`, at the student's max_length. Cached by
    (teacher weights, max_length, pairs): asking for a student already trained then costs no scoring, since its
    cache key (train_once) needs these rows first."""
    root = resolve_cache_root(cache_root)
    spec = resolve_model(teacher, root)
    if spec.kind != "cross_encoder":
        raise ConfigError("teacher", f"'{teacher}' is a {spec.kind} model, not a cross-encoder",
                          "name a reranker trained here (train-reranker name=...; listed under <cache>/conf/reranker/)")

    def score() -> tuple[None, list[float], dict]:
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(str(spec.path), max_length=max_length, device="cpu")
        t0 = time.perf_counter()
        logits = model.predict(pairs, batch_size=32, activation_fn=torch.nn.Identity(), show_progress_bar=False)
        log.info("teacher %s scored %d pairs in %.0f s", teacher, len(pairs), time.perf_counter() - t0)
        return None, [float(x) for x in logits], {"teacher": teacher, "pairs": len(pairs)}

    inputs = {"teacher": spec.weights_sha256, "max_length": max_length, "pairs": data_hash(pairs)}
    entry = Cache(root).get_or_compute("teacher_logits", inputs, score)
    if entry.hit:
        log.info("teacher %s's logits of %d pairs reused from the cache", teacher, len(pairs))
    return entry.payload


def _dataset(rows: list[tuple], loss: str):
    from datasets import Dataset as HFDataset

    if loss in ("bce", "distill"):
        return HFDataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                                    "label": [float(r[2]) for r in rows]})
    columns = ["query", "positive"] + [f"negative_{i}" for i in range(len(rows[0]) - 2)]
    return HFDataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(columns)})


def train_reranker(dataset_node, cfg: RerankerTrainConfig, cache_root: str | Path | None = None,
                   first_stage: FirstStageRanking | None = None) -> dict:
    """Train (or reuse the cached result of the same training), register, log to MLflow; returns a summary.
    `first_stage`: see `build_rows`."""
    per_row = (1 + cfg.negatives + cfg.in_batch) if cfg.loss == "mnrl" else 1
    return train_once("reranker", dataset_node, cfg, lambda tq, c: build_rows(tq, c, cache_root, first_stage), _fit,
                      lambda rows: {"rows": len(rows), "pairs": len(rows) * per_row},
                      lambda name: {"name": "cross_encoder", "model": name, "depth": 20,
                                    "batch_size": 32, "max_length": cfg.max_length, "interpolate": 0.0,
                                    "threads": None},
                      cache_root)


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


def keep_first_layers(model, layers: int) -> None:
    """Cut the cross-encoder's body to its first `layers` transformer layers (saved so: the config says so too)."""
    body = model.model.base_model
    blocks = getattr(getattr(body, "encoder", None), "layer", None)
    if blocks is None:
        raise ConfigError("layers", f"cannot cut a {type(body).__name__} body: no encoder.layer list",
                          "use a BERT-style base (minilm_l6, a model fine-tuned from it) or layers=0")
    if layers > len(blocks):
        raise ConfigError("layers", f"the base has {len(blocks)} layers, cannot keep {layers}",
                          f"use 1-{len(blocks)}, or 0 for all")
    body.encoder.layer = blocks[:layers]
    model.model.config.num_hidden_layers = layers


def _fit(base_folder: str, rows: list[tuple], cfg: RerankerTrainConfig, folder: Path) -> dict:
    import tempfile

    from sentence_transformers import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder import losses

    model = CrossEncoder(base_folder, num_labels=1, max_length=cfg.max_length, device="cpu")
    if cfg.layers:
        keep_first_layers(model, cfg.layers)
    if cfg.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model, num_negatives=cfg.in_batch)
    elif cfg.loss == "distill":
        loss = losses.MSELoss(model)  # on raw logits, as the teacher's labels are
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
    save_model(model, folder)
    pairs = len(rows) * cfg.epochs * ((1 + cfg.negatives + cfg.in_batch) if cfg.loss == "mnrl" else 1)
    return {"train_seconds": seconds, "steps": trainer.state.global_step, "curve": curve,
            "first_loss": curve[0][1] if curve else None, "final_loss": curve[-1][1] if curve else None,
            "pairs_per_second": pairs / max(seconds, 1e-9), "peak_rss_mb": peak_rss_mb()}
