"""FAISS indexes over embeddings (inner product): flat (exact, the default), HNSW, IVF and IVF-PQ.

Sizing for N vectors of dimension d (`resolve_sizing`; a value set in the config wins over its rule):
- IVF lists `nlist` = 4·sqrt(N), at most N/39 (faiss wants 39 training points per centroid); trained on a sample of
  64 points per list (`train_size`; at a million vectors k-means over all of them would take minutes for no
  measurable recall);
- lists probed per query `nprobe` = nlist/8, or enough lists to scan 4,096 vectors when that is more (small corpora
  are searched almost exhaustively: it costs them little), at most nlist;
- IVF-PQ stores `pq_m` bytes per vector (pq_m sub-quantizers of 8 bits, a divisor of d): by default d/4 (16x smaller
  than float32), or the largest divisor whose codes fit `memory_budget_gb`; `index=ivf` with a `memory_budget_gb` its
  float32 lists would exceed becomes IVF-PQ the same way. IVF-PQ rescores its `refine`·k best candidates exactly from
  the memory-mapped embeddings, which stay on disk.

The flat index is the embeddings array itself (memory-mapped from the cache) searched with `faiss.knn`, the same
kernel as `IndexFlatIP`, so it never copies the vectors. ANN indexes are cache entries too (`faiss.write_index`
files), keyed on the embeddings' key and the parameters that change the graph or the lists.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval_lab.config import check_choice, typed
from retrieval_lab.dense.progress import progress_bar
from retrieval_lab.errors import ConfigError

log = logging.getLogger(__name__)
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # "could not load AVX512 library" on every import

INDEXES = ("flat", "hnsw", "ivf", "ivfpq", "chroma")  # chroma: embedded Chroma's HNSW (dense/chroma_index.py)
SPACES = ("ip", "cosine", "l2")
LISTS_PER_SQRT_N = 4  # nlist = 4·sqrt(N)
MIN_POINTS_PER_LIST = 39  # faiss warns when training k-means with fewer points per centroid
TRAIN_POINTS_PER_LIST = 64  # training sample per list
PROBE_SHARE = 8  # nprobe = nlist / 8 ...
MIN_SCANNED = 4096  # ... or the lists holding this many vectors on average, when more
PQ_BITS = 8
ID_BYTES = 8  # an IVF list stores each vector's int64 id beside its code
INDEX_FILE = "index.faiss"


@dataclass(frozen=True)
class IndexConfig:
    name: str = "flat"
    M: int = 32                  # hnsw: neighbours per node
    ef_construction: int = 200   # hnsw: candidate list while building
    ef_search: int = 256         # hnsw: candidate list while searching (recall vs speed)
    nlist: int | None = None     # ivf/ivfpq: number of lists; null: 4·sqrt(N), at most N/39
    nprobe: int | None = None    # ivf/ivfpq: lists visited per query; null: nlist/8, at least 4,096 vectors' worth
    pq_m: int | None = None      # ivfpq: bytes per vector (a divisor of the dimension); null: d/4 or what fits
    refine: int = 4              # ivfpq: rescore refine·k candidates exactly from the embeddings (0: PQ scores)
    memory_budget_gb: float | None = None  # ivf/ivfpq: memory for the stored vectors; ivf above it -> PQ codes
    train_size: int | None = None  # ivf/ivfpq: vectors sampled to train the lists; null: 64 per list
    space: str = "ip"            # chroma: ip | cosine | l2 (the FAISS indexes search inner product)
    ann_recall_k: int = 10       # ANN recall@k against exact search, logged for hnsw/ivf/ivfpq/chroma
    threads: int | None = None   # faiss OpenMP threads; null: faiss default
    query_threads: int | None = 1  # faiss threads for one-query searches (latency); null: as `threads`. One thread
    #                                is immune to OpenMP oversubscription: flat over 100k vectors 4 ms vs 32 ms per
    #                                query here with 2 threads while other processes loaded the 2 cores

    def validate(self, prefix: str = "index") -> None:
        check_choice(f"{prefix}.name", self.name, INDEXES)
        for key in ("M", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "train_size", "ann_recall_k",
                    "threads", "query_threads"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{key}", f"must be a positive integer, got {value}")
        if self.name == "chroma" and importlib.util.find_spec("chromadb") is None:
            raise ConfigError(f"{prefix}.name", "index=chroma needs the chromadb package, which is not installed",
                              "pip install 'retrieval-lab[chroma]' (or chromadb==1.5.9)")
        if self.space not in SPACES:
            raise ConfigError(f"{prefix}.space", f"unknown space '{self.space}'", f"use one of {', '.join(SPACES)}")
        if self.space != "ip" and self.name != "chroma":
            raise ConfigError(f"{prefix}.space", f"index={self.name} searches inner product only",
                              f"drop {prefix}.space (normalized embeddings make ip the cosine), or use index=chroma")
        if self.refine < 0:
            raise ConfigError(f"{prefix}.refine", f"must be >= 0, got {self.refine}")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise ConfigError(f"{prefix}.memory_budget_gb", f"must be positive, got {self.memory_budget_gb}")
        if self.nlist is not None and self.nprobe is not None and self.nprobe > self.nlist:
            raise ConfigError(f"{prefix}.nprobe", f"{self.nprobe} exceeds nlist {self.nlist}",
                              f"set {prefix}.nprobe <= {self.nlist}")

    @property
    def is_ivf(self) -> bool:
        return self.name in ("ivf", "ivfpq")

    @property
    def build_params(self) -> dict:
        """Parameters that change the built index (its cache key)."""
        if self.name == "hnsw":
            return {"name": "hnsw", "M": self.M, "ef_construction": self.ef_construction}
        if self.name == "chroma":  # ef_search too: Chroma stores it in the collection
            return {"name": "chroma", "M": self.M, "ef_construction": self.ef_construction,
                    "ef_search": self.ef_search, "space": self.space}
        if self.is_ivf:
            return {"name": self.name, "nlist": self.nlist, "train_size": self.train_size, "pq_m": self.pq_m,
                    "memory_budget_gb": self.memory_budget_gb}
        return {"name": "flat"}

    @property
    def identity(self) -> dict:
        """Parameters that change search results."""
        extra = {"hnsw": {"ef_search": self.ef_search}, "ivf": {"nprobe": self.nprobe, "refine": self.refine},
                 "ivfpq": {"nprobe": self.nprobe, "refine": self.refine}}.get(self.name, {})
        return {**self.build_params, **extra}


@dataclass(frozen=True)
class Sizing:
    """What an index over N vectors of dimension d is built with, every automatic value resolved."""

    kind: str  # flat | hnsw | ivf | ivfpq (ivf under a memory budget may resolve to ivfpq)
    vectors: int
    dim: int
    nlist: int = 0
    nprobe: int = 0
    train_size: int = 0
    pq_m: int = 0
    refine: int = 0

    @property
    def stored_bytes(self) -> int:
        """Bytes the index stores per its vectors (codes or floats, and list ids), before graph or centroids."""
        if self.kind == "ivfpq":
            return self.vectors * (self.pq_m + ID_BYTES)
        per_vector = 4 * self.dim + (ID_BYTES if self.kind == "ivf" else 0)
        return self.vectors * per_vector

    def stats(self) -> dict[str, float]:
        return {f"index_{k}": float(v) for k, v in asdict(self).items() if k not in ("kind", "vectors", "dim") and v}


def auto_nlist(n: int) -> int:
    return max(1, min(round(LISTS_PER_SQRT_N * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def auto_nprobe(nlist: int, n: int) -> int:
    return min(nlist, max(math.ceil(nlist / PROBE_SHARE), math.ceil(nlist * MIN_SCANNED / max(n, 1))))


def divisors(dim: int) -> list[int]:
    return [m for m in range(1, dim + 1) if dim % m == 0]


def auto_pq_m(n: int, dim: int, budget_gb: float | None, key: str = "index.memory_budget_gb") -> int:
    """d/4 (or the nearest divisor below it) without a budget; else the largest divisor of d, at most d/2 (beyond,
    PQ stores more than IVF-flat's float32 saves), whose codes and ids fit the budget."""
    if budget_gb is None:
        return max(m for m in divisors(dim) if m <= max(1, dim // 4))
    budget = budget_gb * 1e9
    fitting = [m for m in divisors(dim) if m <= max(1, dim // 2) and n * (m + ID_BYTES) <= budget]
    if not fitting:
        raise ConfigError(key, f"{budget_gb} GB cannot hold {n:,} vectors even at 1 byte each "
                          f"({n * (1 + ID_BYTES) / 1e9:.2f} GB with their ids)", "raise the budget")
    return max(fitting)


def resolve_sizing(config: IndexConfig, n: int, dim: int, prefix: str = "index") -> Sizing:
    """The parameters an index over `n` vectors of dimension `dim` is built and searched with."""
    if not config.is_ivf:
        return Sizing(config.name, n, dim)
    nlist = max(1, min(config.nlist, n)) if config.nlist else auto_nlist(n)
    if config.nlist and nlist < config.nlist:
        log.warning("%s.nlist %d exceeds the %d vectors; using %d lists", prefix, config.nlist, n, nlist)
    nprobe = min(config.nprobe, nlist) if config.nprobe else auto_nprobe(nlist, n)
    train_size = min(n, config.train_size or TRAIN_POINTS_PER_LIST * nlist)
    kind = config.name
    flat_bytes = n * (4 * dim + ID_BYTES)
    if kind == "ivf" and config.memory_budget_gb is not None and flat_bytes > config.memory_budget_gb * 1e9:
        log.warning("IVF lists of %d x %d float32 need %.2f GB, over %s.memory_budget_gb=%s: storing PQ codes "
                    "instead (index=ivfpq)", n, dim, flat_bytes / 1e9, prefix, config.memory_budget_gb)
        kind = "ivfpq"
    pq_m = 0
    if kind == "ivfpq":
        pq_m = config.pq_m or auto_pq_m(n, dim, config.memory_budget_gb, f"{prefix}.memory_budget_gb")
        if dim % pq_m:
            raise ConfigError(f"{prefix}.pq_m", f"{pq_m} does not divide the embedding dimension {dim}",
                              f"use one of {', '.join(map(str, divisors(dim)))}")
    return Sizing(kind, n, dim, nlist, nprobe, train_size, pq_m, config.refine if kind == "ivfpq" else 0)


def index_config(node, prefix: str = "index") -> IndexConfig:
    config = typed(IndexConfig, node, prefix)
    config.validate(prefix)
    return config


class MappedFlat:
    """Exact inner-product search straight over the (memory-mapped) embeddings: `faiss.knn`, the kernel
    `IndexFlatIP.search` runs, without copying the vectors into an index."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.ntotal = len(vectors)

    def search(self, queries: np.ndarray, k: int):
        import faiss

        return faiss.knn(queries, self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def training_sample(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """`size` rows drawn without replacement (in row order, to read the memory map forward), or all of them."""
    if size >= len(vectors):
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size=size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def build_index(vectors: np.ndarray, config: IndexConfig, progress: bool | None = None, sizing: Sizing | None = None):
    """A search index over float32 rows (inner product), sized by `resolve_sizing` unless `sizing` is given."""
    import faiss

    if config.threads:
        faiss.omp_set_num_threads(config.threads)
    n, dim = vectors.shape
    sizing = sizing or resolve_sizing(config, n, dim)
    if sizing.kind == "flat":
        return MappedFlat(vectors)
    if sizing.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
    else:
        quantizer = faiss.IndexFlatIP(dim)
        if sizing.kind == "ivfpq":
            index = faiss.IndexIVFPQ(quantizer, dim, sizing.nlist, sizing.pq_m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFFlat(quantizer, dim, sizing.nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(training_sample(vectors, sizing.train_size))
    block = 2048 if sizing.kind == "hnsw" else 65536
    with progress_bar(n, f"index {sizing.kind}", progress if n > block else False, unit="vectors") as bar:
        for start in range(0, n, block):
            index.add(np.ascontiguousarray(vectors[start:start + block], dtype=np.float32))
            bar.update(min(block, n - start))
    set_search_params(index, config, sizing)
    return index


def set_search_params(index, config: IndexConfig, sizing: Sizing | None = None) -> None:
    sizing = sizing or resolve_sizing(config, index.ntotal, index.d)
    if sizing.kind == "hnsw":
        index.hnsw.efSearch = config.ef_search
    elif sizing.kind in ("ivf", "ivfpq"):
        index.nprobe = sizing.nprobe


def write(index, folder: Path) -> Path:
    import faiss

    path = folder / INDEX_FILE
    faiss.write_index(index, str(path))
    return path


def read(folder: Path, config: IndexConfig, sizing: Sizing | None = None):
    import faiss

    index = faiss.read_index(str(folder / INDEX_FILE))
    set_search_params(index, config, sizing)
    return index


def search(index, queries: np.ndarray, k: int, vectors: np.ndarray | None = None, refine: int = 0,
           query_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (rows, scores) per query, -1 / -inf padded when the index holds fewer than k vectors. With `refine`
    and the embeddings, the index's best refine·k candidates are rescored exactly (IVF-PQ's approximate scores).
    A search of one or two queries runs on `query_threads` OpenMP threads."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    depth = k * refine if refine and vectors is not None else k
    k_eff = min(depth, index.ntotal)
    with omp_threads(query_threads if len(queries) <= 2 else None):
        scores, rows = index.search(queries, k_eff)
    rows, scores = rows.astype(np.int64), scores.astype(np.float32)
    if depth != k:
        rows, scores = rescore(rows, queries, vectors, k)
    k_eff = rows.shape[1]
    if k_eff < k:  # fewer vectors than asked: pad with empty slots
        pad = k - k_eff
        rows = np.hstack([rows, np.full((len(rows), pad), -1, dtype=rows.dtype)])
        scores = np.hstack([scores, np.full((len(scores), pad), -np.inf, dtype=scores.dtype)])
    return rows, scores


@contextmanager
def omp_threads(threads: int | None):
    """faiss's OpenMP thread count set for the block (unchanged with None)."""
    if not threads:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def rescore(candidates: np.ndarray, queries: np.ndarray, vectors: np.ndarray, k: int):
    """Each query's candidate rows scored exactly against the embeddings; the best k, ties by row."""
    width = min(k, candidates.shape[1])
    rows = np.full((len(queries), width), -1, dtype=np.int64)
    scores = np.full((len(queries), width), -np.inf, dtype=np.float32)
    for i, (query, cand) in enumerate(zip(queries, candidates)):
        cand = np.unique(cand[cand >= 0])  # sorted: the memory map is read forward
        exact = np.asarray(vectors[cand], dtype=np.float32) @ query
        best = np.argsort(-exact, kind="stable")[:width]
        rows[i, :len(best)], scores[i, :len(best)] = cand[best], exact[best]
    return rows, scores


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the exact top-k (the ANN recall's truth), straight over the embeddings."""
    return search(MappedFlat(vectors), queries, k)[0]


def ann_recall(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean over queries of |ANN top-k ∩ exact top-k| / |exact top-k| (empty slots ignored)."""
    values = []
    for a, e in zip(approx[:, :k], exact[:, :k]):
        truth = set(e[e >= 0].tolist())
        if truth:
            values.append(len(truth & set(a[a >= 0].tolist())) / len(truth))
    return float(np.mean(values)) if values else 1.0


def timed_build(vectors, config, progress=None, sizing: Sizing | None = None):
    t0 = time.perf_counter()
    index = build_index(vectors, config, progress, sizing)
    return index, time.perf_counter() - t0
