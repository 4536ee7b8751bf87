"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over one query's top passages.

Greedy: the next passage is the one with the highest `lambda * relevance - (1 - lambda) * max cosine to the
passages already chosen`. Relevance is the ranking's own scores min-max normalized over the candidates
(`relevance: score`, so MMR keeps the fused or reranked judgement), or the cosine of query and passage embeddings
(`relevance: cosine`). Passage-passage similarity is always the cosine of the passage embeddings. `lambda` 1 keeps
the ranking as it is; lower values push passages that repeat an earlier one down.

Only the top `depth` passages are reordered; they keep the ranking's scores by position (the i-th chosen gets the
i-th best score), so scores stay descending and the passages below `depth` follow unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError

RELEVANCE = ("score", "cosine")


@dataclass(frozen=True)
class MMRConfig:
    name: str = "mmr"
    lambda_: float = 0.7  # config key `lambda`: weight of relevance against novelty; 1 = the ranking unchanged
    depth: int = 20  # passages of the (fused / reranked) ranking reordered per query; the rest follows as ranked
    relevance: str = "score"  # score: the ranking's scores, min-max normalized | cosine: query-passage cosine
    # the passages' embedder; null: the pipeline's (first) dense stage's embedder, whose cached vectors it reuses
    embedder: dict | None = None

    def validate(self, prefix: str = "diversify") -> None:
        if not (isinstance(self.lambda_, float) and math.isfinite(self.lambda_) and 0.0 <= self.lambda_ <= 1.0):
            raise ConfigError(f"{prefix}.lambda", f"must be within [0, 1], got {self.lambda_}",
                              f"set {prefix}.lambda=0.7 (1 keeps the ranking; lower values favour novelty)")
        if self.depth < 2:
            raise ConfigError(f"{prefix}.depth", f"must be an integer >= 2 (passages reordered per query), "
                              f"got {self.depth}", f"set {prefix}.depth=20")
        check_choice(f"{prefix}.relevance", self.relevance, RELEVANCE)

    @property
    def identity(self) -> dict:
        """Everything but the embedder that changes the output (the step adds the embedder's identity)."""
        return {"name": self.name, "lambda": self.lambda_, "depth": self.depth, "relevance": self.relevance}


def normalized(scores: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; all equal (or one score) -> all 1, so relevance does not separate them."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = scores.min(), scores.max()
    if high - low <= 0:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero: similar to nothing)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, lambda_: float) -> list[int]:
    """The MMR order of n candidates: indices into `relevance` (n,) and `vectors` (n, dim), all of them.

    Ties go to the candidate ranked higher before (the lower index), so with `lambda_` 1 and relevance that does not
    increase down the list the order is unchanged."""
    relevance = np.asarray(relevance, dtype=np.float64)
    n = len(relevance)
    if n != len(vectors):
        raise ValueError(f"{n} relevance values for {len(vectors)} vectors")
    if n <= 1 or lambda_ >= 1.0:
        return sorted(range(n), key=lambda i: (-relevance[i], i))
    unit = unit_rows(vectors)
    similarity = unit @ unit.T
    closest = np.full(n, -np.inf)  # max cosine to any chosen passage; nothing chosen yet
    left = np.ones(n, dtype=bool)
    order: list[int] = []
    for _ in range(n):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(left, lambda_ * relevance - (1.0 - lambda_) * redundancy, -np.inf)
        pick = int(np.argmax(gain))  # the first maximum: the higher-ranked of tied candidates
        order.append(pick)
        left[pick] = False
        closest = np.maximum(closest, similarity[pick])
    return order


def diversify(hits: list[tuple[str, float]], vectors: np.ndarray, config: MMRConfig,
              query_vector: np.ndarray | None = None) -> list[tuple[str, float]]:
    """One query's ranking with its top `config.depth` passages in MMR order. `vectors` holds those passages'
    embeddings, row i for hits[i]; `query_vector` is needed with `relevance: cosine`."""
    n = min(config.depth, len(hits))
    if n <= 1:
        return list(hits)
    top = hits[:n]
    if config.relevance == "cosine":
        if query_vector is None:
            raise ValueError("relevance 'cosine' needs the query's embedding")
        relevance = unit_rows(vectors[:n]) @ unit_rows(query_vector)
    else:
        relevance = normalized(np.array([score for _, score in top]))
    order = mmr_order(relevance, vectors[:n], config.lambda_)
    scores = sorted((score for _, score in top), reverse=True)  # the ranking's scores, by position
    return [(top[i][0], scores[rank]) for rank, i in enumerate(order)] + list(hits[n:])
