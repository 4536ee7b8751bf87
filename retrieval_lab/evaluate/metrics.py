"""Rank metrics at cutoff k, computed exactly as trec_eval does (tests compare each with pytrec_eval).

Each metric is a pure function over a gains matrix (queries x ranks, the qrels grade of the document at each rank,
0 when unjudged or non-relevant) selected by name from `METRICS`, as bm25s selects its scoring functions.
Relevant means grade >= 1; nDCG uses the grade itself as gain with a log2(rank + 1) discount.
Every judged query is averaged, a query with no retrieved document scoring 0 (trec_eval -c).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval_lab.types import Qrels, Run


@dataclass(frozen=True)
class Judgements:
    """Per-query facts the metrics need besides the ranking."""

    num_relevant: np.ndarray  # (queries,)
    ideal_gains: np.ndarray  # (queries, depth): qrels grades sorted descending, zero padded


def _relevant(gains: np.ndarray) -> np.ndarray:
    return (gains >= 1).astype(np.float64)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def precision_at_k(gains, k, judged):
    return _relevant(gains[:, :k]).sum(axis=1) / k


def recall_at_k(gains, k, judged):
    return _safe_div(_relevant(gains[:, :k]).sum(axis=1), judged.num_relevant)


def hit_rate_at_k(gains, k, judged):
    return _relevant(gains[:, :k]).max(axis=1, initial=0.0)


def mrr_at_k(gains, k, judged):
    rel = _relevant(gains[:, :k])
    first = rel.argmax(axis=1)
    return np.where(rel.any(axis=1), 1.0 / (first + 1), 0.0)


def map_at_k(gains, k, judged):
    rel = _relevant(gains[:, :k])
    precision_at_rank = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    return _safe_div((precision_at_rank * rel).sum(axis=1), judged.num_relevant)


def _dcg(gains: np.ndarray) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    return (np.clip(gains, 0, None) * discounts).sum(axis=1)


def ndcg_at_k(gains, k, judged):
    return _safe_div(_dcg(gains[:, :k]), _dcg(judged.ideal_gains[:, :k]))


METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
    "hit_rate": hit_rate_at_k,
}


def metric_name(family: str, k: int) -> str:
    return f"{family}_at_{k}"


def gains_matrix(run: Run, qrels: Qrels, query_ids: list[str], depth: int) -> np.ndarray:
    """Grades of the ranked documents; a document listed twice for a query counts once (its first rank)."""
    gains = np.zeros((len(query_ids), depth), dtype=np.float64)
    for row, qid in enumerate(query_ids):
        graded, seen, rank = qrels.get(qid, {}), set(), 0
        for doc_id, _ in run.get(qid, ()):
            if rank == depth:
                break
            if doc_id in seen:
                continue
            seen.add(doc_id)
            gains[row, rank] = graded.get(doc_id, 0)
            rank += 1
    return gains


def judgements(qrels: Qrels, query_ids: list[str], depth: int) -> Judgements:
    num_rel = np.array([sum(1 for g in qrels.get(q, {}).values() if g >= 1) for q in query_ids], dtype=np.float64)
    ideal = np.zeros((len(query_ids), depth), dtype=np.float64)
    for row, qid in enumerate(query_ids):
        grades = sorted((g for g in qrels.get(qid, {}).values() if g > 0), reverse=True)[:depth]
        ideal[row, : len(grades)] = grades
    return Judgements(num_rel, ideal)


@dataclass
class Evaluation:
    query_ids: list[str]
    per_query: dict[str, np.ndarray]  # metric name -> value per query, aligned with query_ids

    @property
    def means(self) -> dict[str, float]:
        return {name: float(values.mean()) if len(values) else 0.0 for name, values in self.per_query.items()}


def evaluate(run: Run, qrels: Qrels, metrics: list[str], ks: list[int],
             query_ids: list[str] | None = None) -> Evaluation:
    """Every metric family in `metrics` at every cutoff in `ks`, over the judged queries (or `query_ids`)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {', '.join(METRICS)}")
    if any(k <= 0 for k in ks):
        raise ValueError(f"cutoffs must be positive, got {ks}")
    query_ids = list(query_ids if query_ids is not None else qrels)
    depth = max(ks)
    gains = gains_matrix(run, qrels, query_ids, depth)
    judged = judgements(qrels, query_ids, depth)
    per_query = {metric_name(m, k): METRICS[m](gains, k, judged) for m in metrics for k in sorted(ks)}
    return Evaluation(query_ids, per_query)
