"""Training queries of one split, with the leakage guard and a deterministic held-out part for selection."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from retrieval_lab.data import Dataset, available_splits, load_dataset
from retrieval_lab.data.beir import load_qrels, load_queries
from retrieval_lab.errors import ConfigError, LeakageError
from retrieval_lab.types import Queries, _digest

log = logging.getLogger(__name__)


@dataclass
class TrainingQueries:
    """The queries a model trains on (`train`) and those held out of training for model selection (`heldout`)."""
    dataset: Dataset  # the training split (its corpus, all its judged queries and qrels)
    train: Queries
    heldout: Queries
    eval_splits: list[str]
    dropped_same_text: int = 0


def _heldout(qid: str, fraction: float, seed: int) -> bool:
    if fraction <= 0:
        return False
    h = int(hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def check_leakage(train_split: str, train_queries: Queries, eval_splits: list[str], eval_queries: dict[str, Queries]
                  ) -> Queries:
    """Raise LeakageError if training would use queries of a split being evaluated; returns the usable queries.

    The same split, or any shared query id, is an error. A training query whose *text* equals an evaluated query
    under another id is dropped (and counted), as training on it would leak just the same.
    """
    if train_split in eval_splits:
        raise LeakageError(f"training split '{train_split}' is the split being evaluated ({eval_splits}): a model "
                           f"trained on its queries would be scored on them. Train on another split (split=train) "
                           f"or evaluate elsewhere (eval_splits=[test])")
    for split, queries in eval_queries.items():
        shared = set(train_queries.ids) & set(queries.ids)
        if shared:
            raise LeakageError(f"{len(shared)} queries of training split '{train_split}' are also in the evaluated "
                               f"split '{split}' (e.g. {sorted(shared)[:3]}); remove them from one of the qrels")
    eval_texts = {t.strip().lower() for q in eval_queries.values() for t in q.texts}
    keep = {qid for qid, text in zip(train_queries.ids, train_queries.texts) if text.strip().lower() not in eval_texts}
    return train_queries.subset(keep)


def training_queries(dataset_node, split: str, eval_splits: list[str], holdout: float = 0.0,
                     seed: int = 0) -> TrainingQueries:
    """Load `split` of the dataset configured by `dataset_node` and guard it against `eval_splits`."""
    node = OmegaConf.merge(dataset_node, {"split": split})
    dataset = load_dataset(node)
    if not 0 <= holdout < 1:
        raise ConfigError("holdout", f"must be within [0, 1), got {holdout}")
    eval_queries = {}
    for other in eval_splits:
        if other == split:
            eval_queries[other] = dataset.queries
            continue
        if other not in available_splits(dataset.path):
            raise ConfigError("eval_splits", f"dataset {dataset.name} has no split '{other}'",
                              f"use some of {available_splits(dataset.path)}")
        ids = set(load_qrels(dataset.path / "qrels" / f"{other}.tsv"))
        all_queries = _all_queries(dataset)
        eval_queries[other] = all_queries.subset(ids)
    usable = check_leakage(split, dataset.queries, eval_splits, eval_queries)
    dropped = len(dataset.queries) - len(usable)
    if dropped:
        log.warning("%d training queries have the same text as an evaluated query and were dropped", dropped)
    held = {q for q in usable.ids if _heldout(q, holdout, seed)}
    return TrainingQueries(dataset, usable.subset(set(usable.ids) - held), usable.subset(held), list(eval_splits),
                           dropped)


def _all_queries(dataset: Dataset) -> Queries:
    return load_queries(dataset.path / "queries.jsonl")


def data_hash(rows) -> str:
    """Content hash of the training examples (tuples of strings and numbers)."""
    return _digest("\x1f".join(map(str, row)) for row in rows)


def write_heldout_split(tq: TrainingQueries, cache_root, name: str = "heldout"):
    """A BEIR folder in the cache that is the training dataset plus `qrels/<name>.tsv` for the held-out queries
    (corpus and queries linked, not copied), so sweeps can select on them: `dataset.path=<folder>
    dataset.split=heldout`. The folder keeps the dataset's name, so the leakage guard still applies."""
    if not len(tq.heldout):
        return None
    source = Path(tq.dataset.path).resolve()
    ids = sorted(tq.heldout.ids)
    key = _digest([tq.dataset.fingerprint, *ids])[:12]
    folder = Path(cache_root).expanduser() / "splits" / key / tq.dataset.name
    qrels = folder / "qrels"
    qrels.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        target = folder / path.name
        if path.name != "qrels" and not target.exists():
            os.symlink(path, target)
    for path in (source / "qrels").glob("*.tsv"):
        if not (qrels / path.name).exists():
            os.symlink(path, qrels / path.name)
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q in ids for d, g in sorted(tq.dataset.qrels[q].items())]
    (qrels / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    return folder
