"""Reranking: rescore the top-N passages of the (fused) first-stage run, then keep the rest of the list below them.

`reranker.depth` (N) is set apart from the first-stage depth and from the final k (`eval.depth`): only the top N
are rescored, the remainder keeps its first-stage order underneath. `reranker.interpolate` (w) mixes the min-max
normalized first-stage score into the min-max normalized reranker score, `(1 - w) * rerank + w * first_stage`; 0 is
a pure reranker. Rerankers are selected by `reranker.type` from `RERANKERS`; `none` switches the stage off.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from retrieval_lab.config import typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.fusion.normalization import minmax
from retrieval_lab.rerank.cross_encoder import CrossEncoderScorer
from retrieval_lab.types import Queries, Run


@dataclass(frozen=True)
class RerankerConfig:
    name: str = "none"  # label (runs, tables); `none` = no reranking
    type: str = "none"  # none | cross_encoder
    model: str | None = None  # HF name, local folder or registered name; default: `name`
    depth: int = 20  # passages rescored per query
    batch_size: int = 32
    max_length: int | None = 512  # tokens of query + passage
    interpolate: float = 0.0  # weight of the first-stage score mixed in (0 = reranker only)
    threads: int | None = None

    @property
    def active(self) -> bool:
        return self.type != "none" and self.name != "none"

    def validate(self, prefix: str = "reranker") -> None:
        if self.type not in RERANKERS:
            raise ConfigError(f"{prefix}.type", f"unknown reranker type '{self.type}'",
                              f"use one of {', '.join(RERANKERS)}")
        if self.depth <= 0:
            raise ConfigError(f"{prefix}.depth", f"must be a positive integer, got {self.depth}")
        if self.batch_size <= 0:
            raise ConfigError(f"{prefix}.batch_size", f"must be a positive integer, got {self.batch_size}")
        if not 0 <= self.interpolate <= 1:
            raise ConfigError(f"{prefix}.interpolate", f"must be within [0, 1], got {self.interpolate}")


def reranker_config(node, prefix: str = "reranker") -> RerankerConfig:
    config = typed(RerankerConfig, node or {}, prefix)
    config.validate(prefix)
    return config


def _cross_encoder(config: RerankerConfig, cache_root, cache_enabled: bool):
    return CrossEncoderScorer(config.model or config.name, config.batch_size, config.max_length, config.threads,
                              cache_root, cache_enabled)


# type -> factory(config, cache root, cache enabled) -> scorer with `.score(pairs) -> np.ndarray`, `.identity`,
# `.last_stats`
RERANKERS: dict[str, Callable | None] = {"none": None, "cross_encoder": _cross_encoder}


def make_scorer(config: RerankerConfig, cache_root: str | Path | None = None, cache_enabled: bool = True):
    return RERANKERS[config.type](config, cache_root, cache_enabled)


def rerank(run: Run, queries: Queries, text_of: dict[str, str], scorer, depth: int, interpolate: float = 0.0
           ) -> tuple[Run, dict[str, float]]:
    """Rescore each query's top `depth` passages; the rest follows in first-stage order. Returns run and costs."""
    qtext = dict(zip(queries.ids, queries.texts))
    pairs, spans = [], []
    for qid, hits in run.items():
        top = hits[:depth]
        spans.append((qid, len(pairs), len(top)))
        pairs.extend((qtext[qid], text_of[pid]) for pid, _ in top)
    t0 = time.perf_counter()
    scores = scorer.score(pairs)
    wall = time.perf_counter() - t0
    out = Run()
    for qid, start, n in spans:
        hits = run[qid]
        new = scores[start:start + n].astype(np.float64)
        if interpolate > 0 and n:
            first = np.array([s for _, s in hits[:n]], dtype=np.float64)
            new = (1 - interpolate) * minmax(new) + interpolate * minmax(first)
        order = sorted(range(n), key=lambda i: (-new[i], i))
        reranked = [(hits[i][0], float(new[i])) for i in order]
        floor = (min(new) if n else 0.0) - 1.0
        rest = [(pid, floor - r) for r, (pid, _) in enumerate(hits[n:], start=1)]  # below every reranked one
        out[qid] = reranked + rest
    stats = dict(getattr(scorer, "last_stats", {}))
    n_queries = max(len(spans), 1)
    # the model's time per pair: measured when the pairs were computed, else its recorded speed (score cache hit);
    # a scorer that reports neither is timed here
    per_pair = stats.get("seconds_per_pair", wall / max(len(pairs), 1))
    pairs_per_query = len(pairs) / n_queries
    return out, {"rerank_seconds": wall, "rerank_pairs": float(len(pairs)),
                 "rerank_pairs_computed": stats.get("pairs_computed", float(len(pairs))),
                 "rerank_seconds_per_pair": per_pair,
                 "rerank_ms_per_query": 1000 * per_pair * pairs_per_query,
                 "rerank_wall_ms_per_query": 1000 * wall / n_queries}


__all__ = ["RerankerConfig", "RERANKERS", "reranker_config", "make_scorer", "rerank"]
