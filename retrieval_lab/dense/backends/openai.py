"""Backend `openai` (`embedder=openai_compatible`): vectors from any server speaking OpenAI's POST /embeddings
(OpenAI, Azure-style proxies, vLLM, infinity, TEI's OpenAI route, LiteLLM, Ollama's /v1).

Batches of `batch_size` texts go out `concurrency` at a time; 429, 5xx and timeouts are retried with backoff
(`retrieval_lab.served`). Every answer is checked: one vector per text, none empty, each of the dimension the probe
found (and `dimensions` when set). Billed tokens come from the answers' `usage`.

Identity: a served model's files cannot be hashed, so it is known by its name plus a fingerprint, the rounded
vectors of fixed probe texts, fetched once per process. The fingerprint is part of every cache key, so another model
behind the same name never replays stale vectors, and `evaluate --config` reports it when it differs from the
export's.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from retrieval_lab.dense.backends.base import Embedder
from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.models.spec import ModelSpec
from retrieval_lab.served import (FINGERPRINT_DIMS, PROBE_TEXTS, Counters, Endpoint, ServedModelError, fingerprint,
                                  post_json, usage_tokens)

_PROBES: dict[tuple, dict] = {}
_PROBE_LOCK = threading.Lock()


def endpoint(config: EmbedderConfig, key: str = "embedder") -> Endpoint:
    return Endpoint(config.base_url.rstrip("/") + "/embeddings", key, config.api_key_env, config.timeout_s,
                    config.max_retries, config.retry_backoff_s)


def request(config: EmbedderConfig, texts: list[str], counters: Counters | None = None,
            expected_dim: int | None = None, key: str = "embedder") -> np.ndarray:
    """One POST /embeddings: the rows of `texts`, checked, in input order."""
    payload = {"model": config.model, "input": texts, "encoding_format": "float"}
    if config.dimensions is not None:
        payload["dimensions"] = config.dimensions
    point = endpoint(config, key)
    answer = post_json(point, payload, counters)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise ServedModelError(f"{point.url}: the answer has no 'data' list of embeddings (got "
                               f"{str(answer)[:200]!r})\n  fix: {key}.base_url must point at an OpenAI-compatible "
                               "API (POST <base_url>/embeddings)")
    if len(data) != len(texts):
        raise ServedModelError(f"{point.url}: sent {len(texts)} texts, got {len(data)} embeddings back\n  fix: lower "
                               f"{key}.batch_size to what the server accepts per request")
    if all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in data):
        data = sorted(data, key=lambda item: item["index"])
    rows = []
    for position, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector:
            raise ServedModelError(f"{point.url}: the embedding of text {position} of the batch is empty or not a "
                                   f"list of numbers (text: {texts[position][:80]!r})\n  fix: check {key}.model "
                                   "is an embedding model; an empty text may need filtering")
        want = expected_dim or config.dimensions
        if want is not None and len(vector) != want:
            asked = f" ({key}.dimensions={config.dimensions})" if config.dimensions is not None else ""
            raise ServedModelError(f"{point.url}: an embedding of {len(vector)} dimensions, expected {want}{asked}\n"
                                   f"  fix: set {key}.dimensions to a size model {config.model} produces, or null "
                                   "for its own")
        rows.append(vector)
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise ServedModelError(f"{point.url}: embeddings of unequal length or not numbers in one answer") from None
    if counters is not None:
        counters.add(requests=1, tokens=usage_tokens(answer))
    return vectors


def probe(config: EmbedderConfig, key: str = "embedder") -> dict:
    """{"fingerprint", "dim"} of the served model: the probe texts embedded once per process and server."""
    memo = (config.base_url, config.model, config.dimensions, config.api_key_env)
    with _PROBE_LOCK:
        if memo not in _PROBES:
            vectors = request(config, list(PROBE_TEXTS), key=key)
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            _PROBES[memo] = {"fingerprint": fingerprint(vectors[:, :FINGERPRINT_DIMS]), "dim": int(vectors.shape[1])}
        return _PROBES[memo]


def served_identity(config: EmbedderConfig, key: str = "embedder") -> dict:
    """Model name + fingerprint (not the URL: one model served elsewhere gives the same vectors), and every
    setting of this lab that changes the vectors."""
    found = probe(config, key)
    return {"model": {"served": "openai_compatible", "name": config.model, "dimensions": config.dimensions,
                      "dim": found["dim"], "fingerprint": found["fingerprint"]},
            "backend": config.backend, "query_prefix": config.query_prefix, "passage_prefix": config.passage_prefix,
            "normalize": config.normalize, "lowercase": config.lowercase}


class OpenAICompatibleEmbedder(Embedder):
    def __init__(self, config: EmbedderConfig, key: str = "embedder"):
        spec = ModelSpec(config.model, "served", "served", config.base_url, "", config.backend, None, True,
                         {"base_url": config.base_url})
        super().__init__(config, spec, config.backend, None)
        self.key = key
        self.counters = Counters()
        self.fingerprint = probe(config, key)["fingerprint"]
        self.dim = probe(config, key)["dim"]

    @property
    def identity(self) -> dict:
        return served_identity(self.config, self.key)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return request(self.config, texts, self.counters, self.dim, self.key)

    def _encode_many(self, batches: Iterable[list[str]]) -> Iterator[np.ndarray]:
        """`concurrency` requests in flight, answers yielded in order; texts are read only as slots free up."""
        width = max(1, self.config.concurrency)
        if width == 1:
            yield from map(self._encode_batch, batches)
            return
        with ThreadPoolExecutor(width, thread_name_prefix="embed") as pool:
            pending: deque = deque()
            for texts in batches:
                pending.append(pool.submit(self._encode_batch, texts))
                if len(pending) >= 2 * width:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
