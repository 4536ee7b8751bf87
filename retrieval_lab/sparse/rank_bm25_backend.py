"""rank-bm25 backend: scores every document per query term with dense numpy (slow; kept for comparison).

rank-bm25 has no Lucene variant, so `lucene` swaps in Lucene's always-positive IDF, log(1 + (N - n + .5)/(n + .5)),
on top of its Okapi term-frequency part: the same formula bm25s computes, so both backends rank alike.
Its own Okapi (`robertson`) floors the IDF of terms found in half or more of the documents (`epsilon`).
"""
from __future__ import annotations

import math

import numpy as np
import rank_bm25

from retrieval_lab.sparse.ranking import top_k


class _LuceneBM25(rank_bm25.BM25Okapi):
    def _calc_idf(self, nd):
        self.idf = {word: math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5)) for word, freq in nd.items()}

    def get_scores(self, query):
        # Lucene (and bm25s) drop Okapi's constant (k1 + 1) factor: same ranking, same scores.
        return super().get_scores(query) / (self.k1 + 1)


class RankBm25Index:
    VARIANTS = {"lucene": _LuceneBM25, "robertson": rank_bm25.BM25Okapi, "bm25l": rank_bm25.BM25L,
                "bm25+": rank_bm25.BM25Plus}

    def __init__(self, k1: float, b: float, variant: str, delta: float = 0.5, threads: int = 0):
        self._cls = self.VARIANTS[variant]
        self._args = dict(k1=k1, b=b) if variant in ("lucene", "robertson") else dict(k1=k1, b=b, delta=delta)
        self._model = None

    size_bytes = None  # rank_bm25 keeps Python lists: no size worth reporting

    def index(self, batches) -> None:
        """Index documents given as batches of token lists (rank-bm25 holds them all)."""
        self._model = self._cls([doc for docs in batches for doc in docs], **self._args)

    def search(self, query_tokens: list[list[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self._model.corpus_size)
        docs = np.empty((len(query_tokens), k), dtype=np.int64)
        scores = np.empty((len(query_tokens), k), dtype=np.float32)
        for row, query in enumerate(query_tokens):
            docs[row], scores[row] = top_k(self._model.get_scores(query), k)
        return docs, scores

    def search_weighted(self, queries: list[dict[str, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for queries given as term -> weight: the weighted sum of each term's BM25 scores."""
        k = min(k, self._model.corpus_size)
        docs = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        for row, weights in enumerate(queries):
            s = np.zeros(self._model.corpus_size)
            for term, weight in weights.items():
                s += weight * self._model.get_scores([term])
            docs[row], scores[row] = top_k(s, k)
        return docs, scores
