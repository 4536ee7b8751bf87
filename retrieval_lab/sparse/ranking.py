"""Top-k of a dense score vector, in the order bm25s returns: score descending, then row ascending."""
from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(scores)
    k = min(k, n)
    top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.lexsort((top, -scores[top]))]
    return top.astype(np.int64), scores[top].astype(np.float32)
