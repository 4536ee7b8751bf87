"""Score normalizations for convex fusion, selected by name (as ranx does): each maps one query's scores, best
first, to comparable values. Degenerate lists (one score, all equal) map to 1.0 (minmax, max, sum, rank) or 0.0
(zscore) instead of dividing by zero."""
from __future__ import annotations

from typing import Callable

import numpy as np


def minmax(scores: np.ndarray) -> np.ndarray:
    """(s - min) / (max - min): the best is 1, the last retrieved 0."""
    lo, hi = scores.min(), scores.max()
    return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)


def zscore(scores: np.ndarray) -> np.ndarray:
    """(s - mean) / std (population std): zero mean, unit variance (ranx calls it zmuv)."""
    std = scores.std()
    return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std


def max_norm(scores: np.ndarray) -> np.ndarray:
    """s / max: keeps the ratio to the best score (meant for non-negative scores such as BM25)."""
    top = scores.max()
    return np.ones_like(scores) if top == 0 else scores / top


def sum_norm(scores: np.ndarray) -> np.ndarray:
    """s / sum(s): each run's scores sum to 1 over its list."""
    total = scores.sum()
    return np.full_like(scores, 1.0 / len(scores)) if total == 0 else scores / total


def rank_norm(scores: np.ndarray) -> np.ndarray:
    """1 - (rank - 1) / n: only the order counts (the best is 1, the n-th 1/n); ties share the better rank."""
    n = len(scores)
    ranks = np.searchsorted(np.sort(-scores), -scores, side="left")  # 0-based, ties share the better rank
    return 1.0 - ranks / n


NORMALIZATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "minmax": minmax, "zscore": zscore, "max": max_norm, "sum": sum_norm, "rank": rank_norm}


def normalize(scores: np.ndarray, method: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    return NORMALIZATIONS[method](scores)


def missing_value(normalized: np.ndarray, method: str) -> float:
    """What a document the run did not return counts as: 0 (the scale's bottom, as in ranx) for the bounded
    normalizations; for z-score the run's lowest z, so an unretrieved document is not credited with the mean."""
    if method == "zscore" and normalized.size:
        return float(normalized.min())
    return 0.0
