"""`reranker=http`: a served reranker behind POST <base_url>/rerank.

`reranker.api: cohere` sends `{model, query, documents, top_n, return_documents: false}` and reads
`{results: [{index, relevance_score}]}`: the shape of Cohere, Jina, Voyage, infinity and vLLM. `api: tei` sends
Hugging Face Text Embeddings Inference's `{query, texts}` and reads its `[{index, score}]`. Retries, timeouts and
errors are `retrieval_lab.served`'s. Scores go to the same per-model score cache as the cross-encoders', keyed on
the model's name and a fingerprint (fixed probe pairs scored once per process), so another model behind the same
name never replays stale scores. Billed tokens come from the answers' `usage` (Cohere: `meta.billed_units`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.rerank.scores import ScoreStore, cached_scores
from retrieval_lab.served import (PROBE_QUERY, PROBE_TEXTS, Counters, Endpoint, ServedModelError, cost, fingerprint,
                                  post_json, usage_tokens)

APIS = ("cohere", "tei")
FINGERPRINT_DECIMALS = 3
_PROBES: dict[tuple, str] = {}


class HttpRerankScorer:
    def __init__(self, config, cache_root: str | Path | None = None, cache_enabled: bool = True,
                 key: str = "reranker"):
        self.config, self.key = config, key
        self.endpoint = Endpoint(config.base_url.rstrip("/") + "/rerank", key, config.api_key_env, config.timeout_s,
                                 config.max_retries, config.retry_backoff_s)
        self.root, self.cache_enabled = resolve_cache_root(cache_root), cache_enabled
        self.counters = Counters()
        self._store: ScoreStore | None = None

    @property
    def fingerprint(self) -> str:
        memo = (self.config.base_url, self.config.model, self.config.api)
        if memo not in _PROBES:
            _PROBES[memo] = fingerprint(self.request(PROBE_QUERY, list(PROBE_TEXTS), None), FINGERPRINT_DECIMALS)
        return _PROBES[memo]

    @property
    def identity(self) -> dict:
        """Name and fingerprint, not the URL (the same model elsewhere gives the same scores)."""
        return {"model": {"served": "rerank", "name": self.config.model, "api": self.config.api,
                          "fingerprint": self.fingerprint}, "max_length": self.config.max_length}

    @property
    def store(self) -> ScoreStore:
        if self._store is None:
            self._store = ScoreStore(self.root, self.identity, enabled=self.cache_enabled)
        return self._store

    def request(self, query: str, documents: list[str], counters: Counters | None) -> np.ndarray:
        """Scores of `documents` for `query` from one request, in document order."""
        if self.config.api == "tei":
            payload = {"query": query, "texts": documents, "truncate": True}
        else:
            payload = {"model": self.config.model, "query": query, "documents": documents,
                       "top_n": len(documents), "return_documents": False}
        answer = post_json(self.endpoint, payload, counters)
        results = answer if isinstance(answer, list) else (answer.get("results") if isinstance(answer, dict)
                                                            else None)
        score_key = "score" if self.config.api == "tei" else "relevance_score"
        if not isinstance(results, list):
            raise ServedModelError(f"{self.endpoint.url}: the answer has no list of results (got {str(answer)[:200]!r})"
                                   f"\n  fix: check {self.key}.api ({', '.join(APIS)}) matches the server")
        scores = np.full(len(documents), np.nan, dtype=np.float64)
        for item in results:
            index = item.get("index") if isinstance(item, dict) else None
            value = item.get(score_key) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(documents) or not isinstance(value, (int, float)):
                raise ServedModelError(f"{self.endpoint.url}: a result without a valid index and '{score_key}': "
                                       f"{str(item)[:200]!r}\n  fix: check {self.key}.api ({', '.join(APIS)}) "
                                       "matches the server")
            scores[index] = float(value)
        if np.isnan(scores).any():
            missing = int(np.isnan(scores).sum())
            raise ServedModelError(f"{self.endpoint.url}: {missing} of {len(documents)} documents came back without "
                                   f"a score\n  fix: lower {self.key}.batch_size below the server's limit on "
                                   "documents per request")
        if counters is not None:
            counters.add(requests=1, tokens=usage_tokens(answer))
        return scores

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Scores of (query, passage) pairs: each query's passages in requests of `batch_size`, no cache."""
        out = np.empty(len(pairs), dtype=np.float32)
        by_query: dict[str, list[int]] = {}
        for i, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(i)
        size = self.config.batch_size
        for query, rows in by_query.items():
            for start in range(0, len(rows), size):
                part = rows[start:start + size]
                out[part] = self.request(query, [pairs[i][1] for i in part], self.counters)
        return out

    def score(self, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, dict[str, float]]:
        """Scores from the cache where present, else from the server, and what they cost."""
        before = self.counters.snapshot()
        scores, stats = cached_scores(self.store, pairs, self.predict)
        spent = self.counters.since(before)
        return scores, {**stats, "tokens": float(spent["tokens"]), "requests": float(spent["requests"]),
                        "retries": float(spent["retries"]),
                        "cost": cost(spent["tokens"], self.config.price_per_1m_tokens)}
