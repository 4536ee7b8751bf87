"""Reciprocal rank fusion (Cormack et al. 2009): score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1.

A run that did not return d adds nothing. Scores of the input runs are ignored; only their order counts.
"""
from __future__ import annotations

from retrieval_lab.types import Run


def rrf(runs: list[Run], weights: list[float], k: float = 60.0) -> Run:
    fused = Run()
    queries = _query_order(runs)
    for qid in queries:
        scores: dict[str, float] = {}
        for run, weight in zip(runs, weights):
            for rank, (pid, _) in enumerate(run.get(qid, []), start=1):
                scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
        fused[qid] = ranked(scores)
    return fused


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Best first; ties keep first-seen order (the first input's order, then the next input's)."""
    order = {pid: i for i, pid in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def _query_order(runs: list[Run]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for qid in run:
            seen.setdefault(qid, None)
    return list(seen)
