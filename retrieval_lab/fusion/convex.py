"""Convex combination: score(d) = sum_i w_i * norm(s_i(d)), weights summing to 1 (two runs: alpha, 1 - alpha).

Each run's scores are normalized per query (see normalization.py) before mixing. A document a run did not return
counts as 0 there (the bottom of the scale, as in ranx), except under z-score where it gets the run's lowest z for
the query, so that an unretrieved document is not credited with the mean.
"""
from __future__ import annotations

import numpy as np

from retrieval_lab.fusion.normalization import missing_value, normalize
from retrieval_lab.fusion.rrf import _query_order, ranked
from retrieval_lab.types import Run


def convex(runs: list[Run], weights: list[float], normalization: str = "minmax") -> Run:
    fused = Run()
    for qid in _query_order(runs):
        scores: dict[str, float] = {}
        normalized = []
        for run in runs:
            hits = run.get(qid, [])
            values = normalize(np.array([s for _, s in hits], dtype=np.float64), normalization)
            normalized.append((dict(zip((pid for pid, _ in hits), values.tolist())),
                               missing_value(values, normalization)))
            for pid, _ in hits:
                scores.setdefault(pid, 0.0)
        for pid in scores:
            scores[pid] = sum(w * table.get(pid, floor) for w, (table, floor) in zip(weights, normalized))
        fused[qid] = ranked(scores)
    return fused
