"""Diversification: reorder each query's top passages so near-duplicates do not fill a reader's context window.

`diversify=none` (the default) leaves the ranking alone; `diversify=mmr` reorders the top `diversify.depth`
passages of the fused or reranked ranking by maximal marginal relevance (`diversify.lambda`, diversify/mmr.py),
comparing passages by their embeddings. `DIVERSIFIERS` maps `diversify.name` to its config class (None: off).
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import time

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages
from retrieval_lab.config import check_choice, to_container, typed
from retrieval_lab.dense import EmbedderConfig, embed_texts, load_embedder
from retrieval_lab.dense.embedders import Embedder, config_identity, embedder_config
from retrieval_lab.diversify.mmr import MMRConfig, diversify, mmr_order
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query

DIVERSIFIERS: dict[str, type | None] = {"none": None, "mmr": MMRConfig}


def diversify_config(node: Any, prefix: str = "diversify") -> MMRConfig | None:
    """The typed, validated config of `diversify.*`, or None when diversification is off (no node: an export
    written before the stage existed)."""
    data = dict(to_container(node) or {})
    name = data.get("name", "none")
    check_choice(f"{prefix}.name", name, DIVERSIFIERS)
    cls = DIVERSIFIERS[name]
    if cls is None:
        return None
    # `lambda` is the key users know (and a Python keyword): the field is `lambda_`, never a key
    keys = [f.name.rstrip("_") for f in dataclasses.fields(cls)]
    for key in data:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            raise ConfigError(f"{prefix}.{key}", "unknown key",
                              f"did you mean '{prefix}.{close[0]}'?" if close else f"known keys: {', '.join(keys)}")
    weight = data.pop("lambda", MMRConfig.lambda_)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(f"{prefix}.lambda", f"expected a number, got {weight!r}", f"set {prefix}.lambda=0.7")
    config = dataclasses.replace(typed(cls, data, prefix), lambda_=float(weight))
    config.validate(prefix)
    return config


def passage_embedder(config: MMRConfig, dense_embedders: list[tuple[str, object]],
                     prefix: str = "diversify") -> tuple[EmbedderConfig, str]:
    """The embedder whose passage vectors MMR compares, and its config key: `diversify.embedder` when set, else the
    first dense stage's (`dense_embedders`: (config key, embedder node) of each, in chain order), whose vectors the
    cache already holds. A pipeline with neither is an error naming the fix."""
    if config.embedder is not None:
        return embedder_config(config.embedder, f"{prefix}.embedder"), f"{prefix}.embedder"
    if not dense_embedders:
        raise ConfigError(f"{prefix}.embedder", "MMR compares passages by their embeddings, and this pipeline has "
                          "no dense stage to take them from",
                          f"name an embedder for it: {prefix}.embedder={{name:minilm_l3}} (or any embedder=... "
                          "option's name), or use a dense or hybrid retriever")
    key, node = dense_embedders[0]
    return embedder_config(node, key), key


class MMRStep(Step):
    """Reorders each query's top `config.depth` passages of the run before it by maximal marginal relevance.

    The passage vectors are the embedder's cache entry for these passages (the dense stage's, so nothing is encoded
    again; an embedder of its own encodes them once); the model is loaded only to encode what the cache lacks and,
    with `relevance: cosine`, each query (one at a time, as `search` does)."""

    label = "diversify"
    code_version = 1

    def __init__(self, config: MMRConfig, embedder: EmbedderConfig, embedder_key: str, cache: Cache,
                 reads: tuple[str, ...]):
        self.config, self.embedder_config, self.embedder_key, self.cache = config, embedder, embedder_key, cache
        self.reads = reads
        self._embedder: Embedder | None = None
        self._embedder_identity: dict | None = None
        self._vectors: tuple[Passages, np.ndarray, bool] | None = None

    @property
    def embedder_identity(self) -> dict:
        if self._embedder_identity is None:
            self._embedder_identity = config_identity(self.embedder_config, self.cache.root, self.embedder_key)
        return self._embedder_identity

    @property
    def identity(self) -> dict:
        return {**self.config.identity, "code_version": self.code_version, "embedder": self.embedder_identity}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.embedder_config, self.cache, self.embedder_key)
        return self._embedder

    def passage_vectors(self, passages: Passages) -> tuple[np.ndarray, bool]:
        """The passages' embeddings (memory-mapped cache entry) and whether the cache held them."""
        if self._vectors is None or self._vectors[0] is not passages:
            vectors, _, hit = embed_texts(self._embedder, self.embedder_config, passages.texts, "passage",
                                          self.cache, self.embedder_identity, passages.fingerprint,
                                          load=lambda: self.embedder)
            self._vectors = (passages, vectors, hit)
        return self._vectors[1], self._vectors[2]

    def run(self, context: Context) -> StepResult:
        t0 = time.perf_counter()
        vectors, hit = self.passage_vectors(context.passages)
        load_seconds = time.perf_counter() - t0
        before = context.input().run
        rows = context.passages.row_of()
        text_of = dict(zip(context.queries.ids, context.queries.texts))
        moved = []

        def one(qid: str) -> list[tuple[str, float]]:
            hits = before.get(qid, [])
            top = [rows[pid] for pid, _ in hits[:self.config.depth]]
            query = (self.embedder.encode([text_of[qid]], kind="query", progress=False)[0]
                     if self.config.relevance == "cosine" else None)
            out = diversify(hits, np.asarray(vectors[top]), self.config, query)
            moved.append(sum(a[0] != b[0] for a, b in zip(out, hits[:len(top)])) / max(len(top), 1))
            return out

        run, latency = per_query(list(context.queries.ids), one)
        return StepResult(run, np.asarray(latency), {
            "diversify_embeddings_seconds": load_seconds, "diversify_embeddings_cache_hit": float(hit),
            "diversify_moved_share": float(np.mean(moved)) if moved else 0.0})


__all__ = ["DIVERSIFIERS", "MMRConfig", "MMRStep", "diversify", "diversify_config", "mmr_order", "passage_embedder"]
