"""Dense first stage: embed passages (a cached stage), index them with FAISS, embed queries and search.

Config: the retriever node `{name: dense}` may carry its own `embedder` and `index` sub-nodes (a hybrid can fuse two
dense stages); otherwise the top-level `embedder` and `index` groups are used (`embedder=minilm_l6 index=hnsw`).

Cache stages written here: `embeddings` (float32 rows encoded a batch at a time into a memory-mapped .npy, renamed
into place when complete, memory-mapped on load; key = passages fingerprint + embedder identity, which includes the
weights' sha256, backend, prefixes, normalization, max tokens), `indexes` (`faiss.write_index` files of HNSW, IVF
and IVF-PQ indexes; key = embeddings key + build parameters) and `onnx_models` (models/onnx_export). Index sizing for
N vectors (IVF lists, probes, PQ codes under a memory budget): dense/index.py.
"""
from __future__ import annotations

import logging
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_lab.cache import Cache, content_key
from retrieval_lab.chunking import Passages
from retrieval_lab.dense import chroma_index, index as faiss_index
from retrieval_lab.dense.backends.base import Embedder
from retrieval_lab.dense.config import EmbedderConfig, embedder_config
from retrieval_lab.dense.embedders import config_identity, load_embedder, load_tokenizer
from retrieval_lab.dense.index import IndexConfig, ann_recall, index_config
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.served import cost
from retrieval_lab.types import Facts, _digest

log = logging.getLogger(__name__)

__all__ = ["DenseConfig", "DenseRetriever", "EmbedderConfig", "IndexConfig", "dense_config", "dense_stage",
           "embed_texts", "embedder_config", "load_embedder"]

STAGE_KEYS = ("name", "embedder", "index")
FINITE_CHECK_ROWS = 65536  # rows checked for NaN/inf at a time (no full-size temporary)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class DenseConfig:
    """A dense first stage's typed config: its embedder and index, and the embedder's config key (named in errors)."""

    embedder: EmbedderConfig
    index: IndexConfig
    embedder_key: str = "embedder"


def dense_config(node: Any, embedder: tuple[Any, str], index: tuple[Any, str], prefix: str) -> DenseConfig:
    """The typed config of the retriever node `{name: dense}` at `prefix`; `embedder` and `index` are (node, config
    key) of the embedder and index it uses: its own sub-nodes, or the top-level groups (`pipeline.build` picks)."""
    unknown = [k for k in node if k not in STAGE_KEYS]
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", "unknown key for a dense retriever",
                          f"known keys: {', '.join(STAGE_KEYS)} (model settings go under embedder.*, "
                          "index settings under index.*)")
    (emb_node, emb_key), (idx_node, idx_key) = embedder, index
    if emb_node is None:
        raise ConfigError(emb_key, "a dense retriever needs an embedder",
                          "pick one with embedder=minilm_l6 (or minilm_l3, wordllama)")
    return DenseConfig(embedder_config(emb_node, emb_key), index_config(idx_node or {}, idx_key), emb_key)


def dense_stage(config: DenseConfig, cache: Cache) -> "DenseRetriever":
    """Factory for `pipeline.build.FIRST_STAGES["dense"]`: no model loading."""
    return DenseRetriever(config.embedder, config.index, cache, config.embedder_key)


def embed_texts(embedder: Embedder | None, config: EmbedderConfig, texts: Sequence[str], kind: str, cache: Cache,
                identity: dict | None = None, fingerprint: str | None = None,
                load=None) -> tuple[np.ndarray, dict, bool]:
    """Embeddings of `texts` as a cache entry (memory-mapped): (array, meta, cache hit). `load()` gives the
    embedder only when the entry must be computed. Rows are encoded a batch at a time straight into the entry's
    .npy file, which the cache renames into place once every row is written."""
    identity = identity or config_identity(config, cache.root)
    inputs = {"texts": fingerprint or _digest(texts), "count": len(texts), "kind": kind, "embedder": identity}

    def write(folder: Path):
        model = embedder or load()
        t0 = time.perf_counter()
        vectors = np.lib.format.open_memmap(folder / "embeddings.npy", mode="w+", dtype=np.float32,
                                            shape=(len(texts), model.dim))
        counters = model.counters  # a served model's requests, retries and billed tokens
        before = counters.snapshot() if counters else {}
        model.encode(texts, kind=kind, out=vectors)
        vectors.flush()
        seconds = time.perf_counter() - t0
        usage = counters.since(before) if counters else {}
        if not all(np.isfinite(vectors[i:i + FINITE_CHECK_ROWS]).all()
                   for i in range(0, len(vectors), FINITE_CHECK_ROWS)):
            raise LabError(f"embedder {config.name} produced non-finite values for {kind}s")
        return None, {"encode_seconds": seconds, "per_second": len(texts) / max(seconds, 1e-9),
                      "count": len(texts), "dim": int(model.dim), "backend": model.backend,
                      "batch_size": config.batch_size, "sort_by_length": config.sort_by_length,
                      **({"tokens": usage["tokens"], "requests": usage["requests"], "retries": usage["retries"],
                          "cost": cost(usage["tokens"], config.price_per_1m_tokens)} if counters else {})}

    entry = cache.get_or_write("embeddings", inputs, write)
    return entry.arrays["embeddings"], {**entry.meta, "key": content_key("embeddings", inputs)}, entry.hit


class LazyEmbedder:
    """One embedder config in one cache: its identity (read from the config and the model's files) at once, the
    model itself only when something the cache lacks must be encoded. The dense stage and MMR share this."""

    def __init__(self, config: EmbedderConfig, cache: Cache, key: str = "embedder"):
        self.config, self.cache, self.key = config, cache, key
        self._identity: dict | None = None
        self._model: Embedder | None = None

    @property
    def identity(self) -> dict:
        if self._identity is None:
            self._identity = config_identity(self.config, self.cache.root, self.key)
        return self._identity

    @property
    def model(self) -> Embedder:
        if self._model is None:
            self._model = load_embedder(self.config, self.cache, self.key)
        return self._model

    @property
    def loaded(self) -> Embedder | None:
        """The model if something loaded it, else None (nothing is loaded to answer)."""
        return self._model

    def embed(self, texts: Sequence[str], kind: str, fingerprint: str | None = None) -> tuple[np.ndarray, dict, bool]:
        """`embed_texts` with this embedder: the cached entry, encoding only on a miss."""
        return embed_texts(self._model, self.config, texts, kind, self.cache, self.identity, fingerprint,
                           load=lambda: self.model)


class DenseRetriever:
    """`index(passages)` embeds (cached) and builds the FAISS index; `search(texts, k)` -> (rows, scores);
    `stats()` what they cost; `facts` what later steps may rely on (tokenizer, max tokens, case sensitivity)."""

    def __init__(self, embedder_config: EmbedderConfig, index_config: IndexConfig, cache: Cache,
                 embedder_key: str = "embedder"):
        self.embedder = LazyEmbedder(embedder_config, cache, embedder_key)
        self.index_config = index_config
        self.cache = cache
        self._index = None
        self._sizing: faiss_index.Sizing | None = None
        self._vectors: np.ndarray | None = None
        self._facts: Facts | None = None
        self._stats: dict[str, float] = {}

    @property
    def identity(self) -> dict:
        return {"name": "dense", "embedder": self.embedder.identity, "index": self.index_config.identity}

    def _tokenizer(self):
        """The embedder's tokenizer (Hugging Face) without loading the model when it is not loaded yet."""
        if self.embedder.loaded is not None:
            return self.embedder.loaded.tokenizer
        return load_tokenizer(self.embedder.config, self.cache.root)

    @property
    def facts(self) -> Facts:
        """The model's name, tokenizer and max tokens, and whether it sees "Protein" and "protein" differently
        (its tokenizer keeps case and `embedder.lowercase` is off); read once, from the tokenizer's files only."""
        if self._facts is None:
            tokenize = self._tokenizer()
            cased = not self.embedder.config.lowercase and tokenize is not None and \
                tokenize("Protein Kinase")["input_ids"] != tokenize("protein kinase")["input_ids"]
            self._facts = Facts(model=self.embedder.config.name, tokenizer=tokenize,
                                max_tokens=self.embedder.identity.get("max_tokens"), case_sensitive=cased)
        return self._facts

    def stats(self) -> dict[str, float]:
        """What embedding, indexing and searching cost so far: encode and build seconds, cache hits, index size,
        ANN recall of the last batch searched, and a served embedder's `spent_*`."""
        return dict(self._stats)

    def index(self, passages: Passages) -> "DenseRetriever":
        if len(passages) == 0:
            raise LabError("dense retriever: no passages to index")
        t0 = time.perf_counter()
        vectors, meta, hit = self.embedder.embed(passages.texts, "passage", passages.fingerprint)
        embed_wall = time.perf_counter() - t0
        self._vectors = vectors
        self._embeddings_key = meta["key"]
        stats = {"encode_seconds": float(meta.get("encode_seconds", embed_wall)),
                 "encode_passages_per_second": float(meta.get("per_second", 0.0)),
                 "embeddings_cache_hit": float(hit), "embeddings_wall_seconds": embed_wall,
                 "embedding_dim": float(vectors.shape[1]), **served_costs(meta, "passage")}
        t0 = time.perf_counter()
        index_hit, size = self._build(vectors)
        stats.update({"index_build_seconds": time.perf_counter() - t0, "index_cache_hit": float(index_hit),
                      "index_size_bytes": float(size), **self._sizing.stats(), "peak_memory_mb": peak_memory_mb()})
        self._stats = stats
        return self

    def _build(self, vectors: np.ndarray) -> tuple[bool, int]:
        """Build (or load) the index; (cache hit, index bytes). Flat searches the memory-mapped embeddings."""
        config = self.index_config
        self._sizing = faiss_index.resolve_sizing(config, *vectors.shape)
        if config.name == "chroma":
            return self._build_chroma(vectors)
        if config.name == "flat":
            self._index = faiss_index.build_index(vectors, config, sizing=self._sizing)
            return False, int(vectors.nbytes)
        inputs = {"embeddings": self._embeddings_key, "index": config.build_params}

        def write(folder: Path):
            index, seconds = faiss_index.timed_build(vectors, config, self.embedder.config.progress, self._sizing)
            faiss_index.write(index, folder)
            return None, {"build_seconds": seconds, "kind": self._sizing.kind}

        entry = self.cache.get_or_write("indexes", inputs, write)
        self._index = faiss_index.read(entry.folder, config, self._sizing)
        return entry.hit, int((entry.folder / faiss_index.INDEX_FILE).stat().st_size)

    def _build_chroma(self, vectors: np.ndarray) -> tuple[bool, int]:
        config = self.index_config
        inputs = {"embeddings": self._embeddings_key, "index": config.build_params}

        def write(folder: Path):
            seconds = chroma_index.build(vectors, folder, config.M, config.ef_construction, config.ef_search,
                                         config.space, self.embedder.config.progress)
            return None, {"build_seconds": seconds, "kind": "chroma"}

        entry = self.cache.get_or_write("indexes", inputs, write)
        self._index = chroma_index.ChromaIndex(entry.folder, config.space)
        size = sum(f.stat().st_size for f in (entry.folder / chroma_index.FOLDER).rglob("*") if f.is_file())
        return entry.hit, int(size)

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            raise LabError("dense retriever: search before index(passages)")
        if len(texts) > 1:
            queries, meta, _ = self.embedder.embed(list(texts), "query")
            self._stats.update(served_costs(meta, "query"))
        else:
            queries = self.embedder.model.encode(list(texts), kind="query", progress=False)
        queries = np.asarray(queries)
        chroma = self.index_config.name == "chroma"
        if chroma:
            rows, scores = self._index.search(queries, k)
        else:
            rows, scores = faiss_index.search(self._index, queries, k, self._vectors, self._sizing.refine,
                                              self.index_config.query_threads)
        kk = self.index_config.ann_recall_k
        if len(texts) > 1 and self.index_config.name != "flat":
            exact_rows = (chroma_index.exact_rows(self._vectors, queries, kk, self.index_config.space) if chroma
                          else faiss_index.exact_search(self._vectors, queries, kk))
            self._stats[f"ann_recall_at_{kk}"] = ann_recall(rows, exact_rows, kk)
        elif len(texts) > 1:
            self._stats[f"ann_recall_at_{kk}"] = 1.0
        self._stats.update(self._spent())
        return rows, scores

    def _spent(self) -> dict[str, float]:
        """What a served embedder's requests cost in this process so far (nothing when every vector came from the
        cache): `spent_*`, which a replayed first-stage run reports as 0."""
        counters = self.embedder.loaded.counters if self.embedder.loaded is not None else None
        if counters is None:
            return {}
        used = counters.snapshot()
        return {"spent_embedding_tokens": float(used["tokens"]), "spent_embedding_requests": float(used["requests"]),
                "spent_embedding_retries": float(used["retries"]),
                "spent_embedding_cost": cost(used["tokens"], self.embedder.config.price_per_1m_tokens)}


def served_costs(meta: dict, kind: str) -> dict[str, float]:
    """Tokens and cost of computing the `kind` embeddings of an entry (replayed from its meta on a cache hit)."""
    if "tokens" not in meta:
        return {}
    return {f"embedding_{kind}_tokens": float(meta["tokens"]), f"embedding_{kind}_cost": float(meta["cost"])}
