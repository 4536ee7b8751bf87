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

from retrieval_lab.config import check_choice, typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.fusion.normalization import minmax
from retrieval_lab.rerank.cross_encoder import BACKENDS, CrossEncoderScorer
from retrieval_lab.rerank.http import APIS as HTTP_APIS, HttpRerankScorer
from retrieval_lab.types import Queries, Run
from retrieval_lab.served import check_served_settings


@dataclass(frozen=True)
class RerankerConfig:
    name: str = "none"  # label (runs, tables); `none` = no reranking
    type: str = "none"  # none | cross_encoder
    model: str | None = None  # HF name, local folder or registered name; default: `name`
    depth: int = 20  # passages rescored per query
    batch_size: int = 32
    max_length: int | None = 512  # tokens of query + passage
    backend: str = "torch"  # torch | onnx (exported once, the torch scores) | onnx_int8 (dynamic int8, faster)
    interpolate: float = 0.0  # weight of the first-stage score mixed in (0 = reranker only)
    threads: int | None = None
    # type http (reranker=http): a served /rerank API, rerank/http.py; batch_size = documents per request
    base_url: str | None = None  # e.g. https://api.cohere.com/v2, http://127.0.0.1:7997
    api: str = "cohere"  # cohere (Cohere, Jina, Voyage, infinity, vLLM) | tei (Hugging Face TEI)
    api_key_env: str | None = None  # environment variable holding the key (Bearer); null: no key
    max_retries: int = 5  # retries of 429 / 5xx / timeouts with exponential backoff
    retry_backoff_s: float = 1.0
    timeout_s: float = 60.0
    price_per_1m_tokens: float | None = None  # cost logged per run (rerank_spent_cost); null: not priced

    @property
    def active(self) -> bool:
        return self.type != "none" and self.name != "none"

    def validate(self, prefix: str = "reranker") -> None:
        check_choice(f"{prefix}.type", self.type, RERANKERS)
        if self.depth <= 0:
            raise ConfigError(f"{prefix}.depth", f"must be a positive integer, got {self.depth}")
        if self.batch_size <= 0:
            raise ConfigError(f"{prefix}.batch_size", f"must be a positive integer, got {self.batch_size}")
        check_choice(f"{prefix}.backend", self.backend, BACKENDS)
        if self.max_length is not None and self.max_length <= 0:
            raise ConfigError(f"{prefix}.max_length", f"must be a positive integer or null, got {self.max_length}")
        if not 0 <= self.interpolate <= 1:
            raise ConfigError(f"{prefix}.interpolate", f"must be within [0, 1], got {self.interpolate}")
        if self.type == "http":
            self._validate_http(prefix)

    def _validate_http(self, prefix: str) -> None:
        check_choice(f"{prefix}.api", self.api, HTTP_APIS, what="request shapes of a served /rerank")
        if not self.base_url or not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{prefix}.base_url", f"a served reranker needs an http(s) URL, got {self.base_url!r}",
                              f"set {prefix}.base_url=http://127.0.0.1:7997 (POST <base_url>/rerank)")
        if not self.model:
            raise ConfigError(f"{prefix}.model", "a served reranker needs the model name the server knows",
                              f"set {prefix}.model=rerank-v3.5 (or the name your server serves)")
        check_served_settings(self, prefix)


def reranker_config(node, prefix: str = "reranker") -> RerankerConfig:
    config = typed(RerankerConfig, node or {}, prefix)
    config.validate(prefix)
    return config


def _cross_encoder(config: RerankerConfig, cache_root, cache_enabled: bool):
    return CrossEncoderScorer(config.model or config.name, config.batch_size, config.max_length, config.threads,
                              cache_root, cache_enabled, config.backend)


# type -> factory(config, cache root, cache enabled) -> scorer with `.identity` and `.score(pairs) -> (scores, stats)`:
# the stats of that call (`pairs_computed`, `seconds_per_pair`; a served model's tokens, cost, requests, retries)
RERANKERS: dict[str, Callable | None] = {"none": None, "cross_encoder": _cross_encoder, "http": HttpRerankScorer}


def make_scorer(config: RerankerConfig, cache_root: str | Path | None = None, cache_enabled: bool = True):
    return RERANKERS[config.type](config, cache_root, cache_enabled)


def rerank(run: Run, queries: Queries, text_of: dict[str, str], scorer, depth: int, interpolate: float = 0.0
           ) -> tuple[Run, dict[str, float]]:
    """Rescore each query's top `depth` passages; the rest follows in first-stage order. Returns run and costs.

    The scorer is called once per query, as a live search calls it: its batches, and so its cost per pair and (for a
    batch-dependent int8 model) its scores, are those of one query's candidates whether evaluating or searching."""
    qtext = dict(zip(queries.ids, queries.texts))
    out = Run()
    n_pairs, computed, weighted_per_pair, reported_per_pair = 0, 0.0, 0.0, None
    billed: dict[str, float] = {}  # a served reranker's tokens, cost, requests, retries spent now
    t0 = time.perf_counter()
    for qid, hits in run.items():
        n = min(depth, len(hits))
        new = np.zeros(0)
        if n:
            scores, stats = scorer.score([(qtext[qid], text_of[pid]) for pid, _ in hits[:n]])
            new = scores.astype(np.float64)
            n_pairs += n
            computed += stats.get("pairs_computed", n)
            for name in ("tokens", "cost", "requests", "retries"):
                if name in stats:
                    billed[name] = billed.get(name, 0.0) + stats[name]
            if "seconds_per_pair" in stats:
                reported_per_pair = stats["seconds_per_pair"]
                weighted_per_pair += stats["seconds_per_pair"] * stats.get("pairs_computed", n)
        if interpolate > 0 and n:
            first = np.array([s for _, s in hits[:n]], dtype=np.float64)
            new = (1 - interpolate) * minmax(new) + interpolate * minmax(first)
        order = sorted(range(n), key=lambda i: (-new[i], i))
        reranked = [(hits[i][0], float(new[i])) for i in order]
        floor = (min(new) if n else 0.0) - 1.0
        rest = [(pid, floor - r) for r, (pid, _) in enumerate(hits[n:], start=1)]  # below every reranked one
        out[qid] = reranked + rest
    wall = time.perf_counter() - t0
    n_queries = max(len(run), 1)
    # the model's time per pair: measured when the pairs were computed, else its recorded speed (score cache hit);
    # a scorer that reports neither is timed here
    if computed and weighted_per_pair:
        per_pair = weighted_per_pair / computed
    elif reported_per_pair is not None:
        per_pair = reported_per_pair
    else:
        per_pair = wall / max(n_pairs, 1)
    return out, {"rerank_seconds": wall, "rerank_pairs": float(n_pairs), "rerank_pairs_computed": float(computed),
                 "rerank_seconds_per_pair": per_pair,
                 "rerank_ms_per_query": 1000 * per_pair * n_pairs / n_queries,
                 "rerank_wall_ms_per_query": 1000 * wall / n_queries,
                 **{f"rerank_spent_{name}": value for name, value in billed.items()}}


__all__ = ["RerankerConfig", "RERANKERS", "reranker_config", "make_scorer", "rerank"]
