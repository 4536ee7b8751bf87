"""The diversify step: MMR (retrieval_lab/diversify) over the passage run before it (fused, reranked or a single
first stage's), before documents and units are taken from it."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages
from retrieval_lab.dense import DenseConfig, EmbedderConfig, LazyEmbedder
from retrieval_lab.diversify import MMRConfig, diversify, diversify_config, passage_embedder
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query

DIVERSIFY = "diversify"


@dataclass(frozen=True)
class DiversifySettings:
    mmr: MMRConfig
    embedder: EmbedderConfig  # whose passage vectors are compared
    embedder_key: str  # its config key: `diversify.embedder`, or the dense stage's


def read_diversify(cfg, specs) -> DiversifySettings | None:
    """`diversify.*` typed and validated, with the embedder it compares passages by (None: the step is off)."""
    config = diversify_config(cfg.get("diversify"))
    if config is None:
        return None
    dense = [(spec.config.embedder, spec.config.embedder_key) for spec in specs if isinstance(spec.config,
                                                                                               DenseConfig)]
    return DiversifySettings(config, *passage_embedder(config, dense))


def make_diversify(settings: DiversifySettings | None, built) -> "MMRStep | None":
    if settings is None:
        return None
    return MMRStep(settings.mmr, settings.embedder, settings.embedder_key, built.cache, (built.last,))


class MMRStep(Step):
    """Reorders each query's top `config.depth` passages of the run before it by maximal marginal relevance.

    The passage vectors are the embedder's cache entry for these passages (the dense stage's, so nothing is encoded
    again; an embedder of its own encodes them once); the model is loaded only to encode what the cache lacks and,
    with `relevance: cosine`, each query (one at a time, as `search` does)."""

    label = DIVERSIFY
    stage_version = 1

    def __init__(self, config: MMRConfig, embedder: EmbedderConfig, embedder_key: str, cache: Cache,
                 reads: tuple[str, ...]):
        self.config, self.reads = config, reads
        self.embedder = LazyEmbedder(embedder, cache, embedder_key)
        self._vectors: tuple[Passages, np.ndarray, bool] | None = None

    @property
    def identity(self) -> dict:
        return {**self.config.identity, "stage_version": self.stage_version, "embedder": self.embedder.identity}

    def passage_vectors(self, passages: Passages) -> tuple[np.ndarray, bool]:
        """The passages' embeddings (memory-mapped cache entry) and whether the cache held them."""
        if self._vectors is None or self._vectors[0] is not passages:
            vectors, _, hit = self.embedder.embed(passages.texts, "passage", passages.fingerprint)
            self._vectors = (passages, vectors, hit)
        return self._vectors[1], self._vectors[2]

    def run(self, context: Context) -> StepResult:
        t0 = time.perf_counter()
        vectors, hit = self.passage_vectors(context.passages)
        vectors_seconds = time.perf_counter() - t0
        before = context.input().run
        rows = context.passages.row_of()
        text_of = dict(zip(context.queries.ids, context.queries.texts))
        moved: list[float] = []

        def one(qid: str) -> list[tuple[str, float]]:
            hits = before.get(qid, [])
            top = [rows[pid] for pid, _ in hits[:self.config.depth]]
            query = (self.embedder.model.encode([text_of[qid]], kind="query", progress=False)[0]
                     if self.config.relevance == "cosine" else None)
            out = diversify(hits, np.asarray(vectors[top]), self.config, query)
            moved.append(sum(a[0] != b[0] for a, b in zip(out, hits[:len(top)])) / max(len(top), 1))
            return out

        run, latency = per_query(list(context.queries.ids), one)
        # the share of each query's top `depth` positions MMR gave another passage: how much it changed
        return StepResult(run, np.asarray(latency), {
            "diversify_vectors_seconds": vectors_seconds, "diversify_vectors_cache_hit": float(hit),
            "diversify_moved_share": float(np.mean(moved)) if moved else 0.0})
