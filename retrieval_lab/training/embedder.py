"""`retrieval-lab train-embedder`: fine-tune a bi-encoder on a split's (query, relevant passage) pairs.

Loss: MultipleNegativesRankingLoss (in-batch negatives; every other passage of the batch is a negative) with the
NO_DUPLICATES batch sampler, so a batch never holds the same text twice (a duplicate would be a false negative).
Optionally each pair carries BM25-mined hard negatives: unjudged-or-non-relevant passages from the BM25 top-N.
The trained model is saved in the cache under a hash of (base weights, settings, training data), so asking for the
same training twice reuses it, and is registered under `name` for `embedder=<name>`.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.chunking import whole_documents
from retrieval_lab.errors import ConfigError
from retrieval_lab.training.common import loss_curve, peak_rss_mb, save_model, train_once
from retrieval_lab.training.data import TrainingQueries
from retrieval_lab.training.negatives import bm25_negatives

log = logging.getLogger(__name__)


@dataclass
class EmbedderTrainConfig:
    name: str | None = None  # registered name (default <base>-<dataset>-ft)
    base: str = "minilm_l6"  # bundled short name, registered embedder, local folder or HF name
    split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])  # never trained on
    holdout: float = 0.0  # fraction of training queries kept out of training, for selection
    seed: int = 0
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 2e-5
    warmup: float = 0.1  # fraction of steps
    max_seq_length: int = 256
    min_grade: int = 1
    max_positives_per_query: int = 0  # 0 = every relevant passage
    hard_negatives: int = 0  # BM25-mined negatives per pair (0 = in-batch negatives only)
    negative_depth: int = 30  # mined from the BM25 top-N that are not relevant
    max_pairs: int = 0  # 0 = all (tests use a handful)
    threads: int = 0  # torch threads (0 = torch's default)
    seeds: list[int] | None = None  # several seeds: one model per seed, registered as <name>-seed<s>

    def validate(self) -> None:
        for key in ("epochs", "batch_size", "lr", "max_seq_length"):
            if not getattr(self, key) > 0:
                raise ConfigError(key, f"must be > 0, got {getattr(self, key)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", "in-batch negatives need at least 2 pairs per batch")
        if self.hard_negatives < 0 or self.negative_depth < self.hard_negatives:
            raise ConfigError("hard_negatives", "must be >= 0 and <= negative_depth")


def passage_texts(tq: TrainingQueries) -> tuple[list[str], dict[str, str]]:
    passages = whole_documents(tq.dataset.corpus, title=True)
    return passages.ids, dict(zip(passages.ids, passages.texts))


def positives(tq: TrainingQueries, min_grade: int, max_per_query: int, seed: int = 0) -> dict[str, list[str]]:
    """Relevant passages per training query, highest grade first. When `max_per_query` cuts a grade short, the kept
    ones are a seeded random sample of it: cutting by id order would favour low-id documents, which in NFCorpus are
    relevant to many queries and so crowd batches with false in-batch negatives."""
    out = {}
    for qid in tq.train.ids:
        ranked = sorted(((g, d) for d, g in tq.dataset.qrels.get(qid, {}).items() if g >= min_grade),
                        key=lambda x: (-x[0], x[1]))
        docs = [d for _, d in ranked]
        if max_per_query and len(docs) > max_per_query:
            rng = random.Random(f"{seed}:{qid}")
            grade_of = dict((d, g) for g, d in ranked)
            docs = sorted(docs, key=lambda d: (-grade_of[d], rng.random()))[:max_per_query]
        out[qid] = docs
    return out


def build_examples(tq: TrainingQueries, cfg: EmbedderTrainConfig) -> list[tuple[str, ...]]:
    """(query, positive[, negative...]) rows, shuffled with the seed."""
    _, text_of = passage_texts(tq)
    rng = random.Random(cfg.seed)
    pos = positives(tq, cfg.min_grade, cfg.max_positives_per_query, cfg.seed)
    negs = bm25_negatives(tq, cfg.negative_depth) if cfg.hard_negatives else {}
    rows = []
    for qid, qtext in zip(tq.train.ids, tq.train.texts):
        for doc in pos[qid]:
            row = (qtext, text_of[doc])
            if cfg.hard_negatives:
                pool = negs.get(qid, [])
                if len(pool) < cfg.hard_negatives:
                    continue
                row += tuple(text_of[d] for d in rng.sample(pool, cfg.hard_negatives))
            rows.append(row)
    rng.shuffle(rows)
    if cfg.max_pairs:
        rows = rows[:cfg.max_pairs]
    if not rows:
        raise ConfigError("split", f"no training pairs: split '{cfg.split}' has no query with a passage graded >= "
                                   f"{cfg.min_grade}")
    return rows


def _columns(rows: list[tuple[str, ...]]) -> dict[str, list[str]]:
    names = ["anchor", "positive"] + [f"negative_{i}" for i in range(len(rows[0]) - 2)]
    return {name: [r[i] for r in rows] for i, name in enumerate(names)}


def train_embedder(dataset_node, cfg: EmbedderTrainConfig, cache_root: str | Path | None = None) -> dict:
    """Train (or reuse the cached result of the same training), register, log to MLflow; returns a summary."""
    return train_once("embedder", dataset_node, cfg, build_examples, _fit, lambda rows: {"pairs": len(rows)},
                      lambda name: {"name": name, "model": name, "max_tokens": cfg.max_seq_length}, cache_root)


def _fit(base_folder: str, rows: list[tuple[str, ...]], cfg: EmbedderTrainConfig, folder: Path) -> dict:
    import tempfile

    from datasets import Dataset as HFDataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(base_folder, device="cpu")
    model.max_seq_length = cfg.max_seq_length
    data = HFDataset.from_dict(_columns(rows))
    steps = max(1, int(len(rows) / cfg.batch_size * cfg.epochs))
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr, warmup_steps=cfg.warmup, batch_sampler=BatchSamplers.NO_DUPLICATES,
            logging_steps=max(1, steps // 25), save_strategy="no", report_to=[], seed=cfg.seed, use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        curve = loss_curve(trainer.state.log_history)
    save_model(model, folder)
    return {"train_seconds": seconds, "steps": trainer.state.global_step, "curve": curve,
            "first_loss": curve[0][1] if curve else None, "final_loss": curve[-1][1] if curve else None,
            "pairs_per_second": len(rows) * cfg.epochs / max(seconds, 1e-9), "peak_rss_mb": peak_rss_mb()}
