"""rank-bm25 backend: scores every document per query term with dense numpy (slow; kept for comparison).

Its Okapi variant floors the IDF of terms found in half or more of the documents (`epsilon`), unlike Lucene.
"""
from __future__ import annotations

import numpy as np


class RankBm25Index:
    VARIANTS = {"lucene": "BM25Okapi", "robertson": "BM25Okapi", "bm25l": "BM25L", "bm25+": "BM25Plus"}

    def __init__(self, k1: float, b: float, variant: str, delta: float = 0.5, threads: int = 0):
        self._args = dict(k1=k1, b=b) if variant in ("lucene", "robertson") else dict(k1=k1, b=b, delta=delta)
        self._cls_name = self.VARIANTS[variant]
        self._model = None

    def index(self, tokens: list[list[str]]) -> None:
        import rank_bm25

        # rank-bm25 divides by zero on an empty corpus document list only; empty documents are fine.
        self._model = getattr(rank_bm25, self._cls_name)(tokens, **self._args)

    def search(self, query_tokens: list[list[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
        n = self._model.corpus_size
        k = min(k, n)
        docs = np.empty((len(query_tokens), k), dtype=np.int64)
        scores = np.empty((len(query_tokens), k), dtype=np.float32)
        for row, query in enumerate(query_tokens):
            s = self._model.get_scores(query)
            top = np.argpartition(-s, k - 1)[:k] if k < n else np.arange(n)
            top = top[np.lexsort((top, -s[top]))]  # score desc, then index asc, as bm25s breaks ties
            docs[row], scores[row] = top, s[top]
        return docs, scores
