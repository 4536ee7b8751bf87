"""`index=chroma`: the passages' vectors in an embedded Chroma collection, searched with Chroma's own HNSW.

Settings map onto Chroma's collection configuration: `M` -> `max_neighbors`, `ef_construction`, `ef_search`, and
`space` (ip, cosine, l2). The collection is a cache entry (stage `indexes`: Chroma's persistent folder) keyed on the
embeddings and all four settings; `ef_search` is in the key too, since Chroma stores it in the collection and
changing it in place would change it under any other process reading the same entry. Scores follow the space so
that fusion sees "higher is better": ip and cosine give the similarity (1 - Chroma's distance), l2 the negated
squared distance. ANN recall is measured against exact search in the same space.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SPACES = ("ip", "cosine", "l2")
COLLECTION = "passages"
FOLDER = "chroma"


def _client(folder: Path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def _release() -> None:
    """Chroma keeps one system per path per process: drop them, so a folder renamed into place opens afresh."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def build(vectors: np.ndarray, folder: Path, M: int, ef_construction: int, ef_search: int, space: str,
          progress: bool | None = None) -> float:
    """Write the collection under `folder`; returns the seconds spent adding the vectors."""
    from retrieval_lab.dense.progress import progress_bar

    client = _client(folder / FOLDER)
    collection = client.create_collection(COLLECTION, embedding_function=None, configuration={"hnsw": {
        "space": space, "max_neighbors": M, "ef_construction": ef_construction, "ef_search": ef_search}})
    n = len(vectors)
    block = min(client.get_max_batch_size(), 5000)
    t0 = time.perf_counter()
    with progress_bar(n, "index chroma", progress if n > block else False, unit="vectors") as bar:
        for start in range(0, n, block):
            part = np.ascontiguousarray(vectors[start:start + block], dtype=np.float32)
            collection.add(ids=[str(i) for i in range(start, start + len(part))], embeddings=part)
            bar.update(len(part))
    seconds = time.perf_counter() - t0
    del collection, client
    _release()
    return seconds


class ChromaIndex:
    def __init__(self, folder: Path, space: str):
        self.client = _client(folder / FOLDER)
        self.collection = self.client.get_collection(COLLECTION)
        self.space = space
        self.ntotal = self.collection.count()
        self.configuration = dict(self.collection.configuration.get("hnsw") or {})

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows, scores) per query, -1 / -inf padded when the collection holds fewer than k vectors."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        k_eff = min(k, self.ntotal)
        if k_eff == 0 or len(queries) == 0:
            return rows, scores
        answer = self.collection.query(query_embeddings=queries, n_results=k_eff, include=["distances"])
        for i, (ids, distances) in enumerate(zip(answer["ids"], answer["distances"])):
            found = len(ids)
            rows[i, :found] = np.fromiter(map(int, ids), dtype=np.int64, count=found)
            distances = np.asarray(distances, dtype=np.float32)
            scores[i, :found] = -distances if self.space == "l2" else 1.0 - distances
        return rows, scores


def exact_rows(vectors: np.ndarray, queries: np.ndarray, k: int, space: str) -> np.ndarray:
    """The exact top-k rows in `space` (the ANN recall's truth)."""
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if space == "l2":
        return faiss.knn(queries, np.ascontiguousarray(vectors, dtype=np.float32), k, metric=faiss.METRIC_L2)[1]
    if space == "cosine":
        unit = np.asarray(vectors, dtype=np.float32)
        unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        return faiss.knn(queries, unit, k, metric=faiss.METRIC_INNER_PRODUCT)[1]
    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]
