"""FAISS indexes over embeddings (inner product): flat (exact, the default), HNSW, IVF.

Built from cached embeddings; ANN indexes are cache entries too (`faiss.serialize_index` bytes as a uint8 array, no
pickle), keyed on the embeddings' key and the index parameters that change the graph or the lists.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from retrieval_lab.config import typed
from retrieval_lab.dense.embedders import progress_bar
from retrieval_lab.errors import ConfigError

log = logging.getLogger(__name__)
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # "could not load AVX512 library" on every import

INDEXES = ("flat", "hnsw", "ivf")


@dataclass(frozen=True)
class IndexConfig:
    name: str = "flat"
    M: int = 32                  # hnsw: neighbours per node
    ef_construction: int = 200   # hnsw: candidate list while building
    ef_search: int = 256         # hnsw: candidate list while searching (recall vs speed)
    nlist: int = 64              # ivf: number of lists (clamped to the number of vectors)
    nprobe: int = 16             # ivf: lists visited per query
    ann_recall_k: int = 10       # ANN recall@k against exact search, logged for hnsw/ivf
    threads: int | None = None   # faiss OpenMP threads; null: faiss default

    def validate(self, prefix: str = "index") -> None:
        if self.name not in INDEXES:
            raise ConfigError(f"{prefix}.name", f"unknown index '{self.name}'", f"use one of {', '.join(INDEXES)}")
        for key in ("M", "ef_construction", "ef_search", "nlist", "nprobe", "ann_recall_k"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{prefix}.{key}", f"must be a positive integer, got {getattr(self, key)}")
        if self.name == "ivf" and self.nprobe > self.nlist:
            raise ConfigError(f"{prefix}.nprobe", f"{self.nprobe} exceeds nlist {self.nlist}",
                              f"set {prefix}.nprobe <= {self.nlist}")

    @property
    def build_params(self) -> dict:
        """Parameters that change the built index (its cache key)."""
        if self.name == "hnsw":
            return {"name": "hnsw", "M": self.M, "ef_construction": self.ef_construction}
        if self.name == "ivf":
            return {"name": "ivf", "nlist": self.nlist}
        return {"name": "flat"}

    @property
    def identity(self) -> dict:
        """Parameters that change search results."""
        extra = {"hnsw": {"ef_search": self.ef_search}, "ivf": {"nprobe": self.nprobe}}.get(self.name, {})
        return {**self.build_params, **extra}


def index_config(node, prefix: str = "index") -> IndexConfig:
    config = typed(IndexConfig, node, prefix)
    config.validate(prefix)
    return config


def build_index(vectors: np.ndarray, config: IndexConfig, progress: bool | None = None):
    """A FAISS index over float32 rows (inner product)."""
    import faiss

    if config.threads:
        faiss.omp_set_num_threads(config.threads)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if config.name == "flat":
        index = faiss.IndexFlatIP(dim)
    elif config.name == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
    else:
        nlist = max(1, min(config.nlist, n))
        if nlist < config.nlist:
            log.warning("index.nlist %d exceeds the %d vectors; using %d lists", config.nlist, n, nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    block = 2048 if config.name == "hnsw" else max(n, 1)
    with progress_bar(n, f"index {config.name}", progress if n > block else False, unit="vectors") as bar:
        for start in range(0, n, block):
            index.add(vectors[start:start + block])
            bar.update(min(block, n - start))
    set_search_params(index, config)
    return index


def set_search_params(index, config: IndexConfig) -> None:
    if config.name == "hnsw":
        index.hnsw.efSearch = config.ef_search
    elif config.name == "ivf":
        index.nprobe = config.nprobe


def serialize(index) -> np.ndarray:
    import faiss

    return faiss.serialize_index(index)


def deserialize(data: np.ndarray, config: IndexConfig):
    import faiss

    index = faiss.deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
    set_search_params(index, config)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k_eff = min(k, index.ntotal)
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k_eff)
    if k_eff < k:  # fewer vectors than asked: pad with empty slots
        pad = k - k_eff
        rows = np.hstack([rows, np.full((len(rows), pad), -1, dtype=rows.dtype)])
        scores = np.hstack([scores, np.full((len(scores), pad), -np.inf, dtype=scores.dtype)])
    return rows.astype(np.int64), scores.astype(np.float32)


def ann_recall(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean over queries of |ANN top-k ∩ exact top-k| / |exact top-k| (empty slots ignored)."""
    values = []
    for a, e in zip(approx[:, :k], exact[:, :k]):
        truth = set(e[e >= 0].tolist())
        if truth:
            values.append(len(truth & set(a[a >= 0].tolist())) / len(truth))
    return float(np.mean(values)) if values else 1.0


def timed_build(vectors, config, progress=None):
    t0 = time.perf_counter()
    index = build_index(vectors, config, progress)
    return index, time.perf_counter() - t0
