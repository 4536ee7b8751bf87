"""BM25 first stage: one tokenizer, backends selected by name, optional RM3 query expansion (sparse/rm3.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from retrieval_lab.chunking import Passages
from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError
from retrieval_lab.sparse.bm25s_backend import Bm25sIndex
from retrieval_lab.sparse.rank_bm25_backend import RankBm25Index
from retrieval_lab.sparse.rm3 import RM3Config, expanded_query
from retrieval_lab.sparse.tokenize import Tokenizer, TokenizerConfig
from retrieval_lab.types import Facts

BACKENDS = {"bm25s": Bm25sIndex, "rank_bm25": RankBm25Index}
TOKENIZE_BATCH = 4096  # passages tokenized at a time


@dataclass(frozen=True)
class BM25Config:
    backend: str = "bm25s"
    variant: str = "lucene"
    k1: float = 0.9
    b: float = 0.4
    delta: float = 0.5  # only bm25l / bm25+
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    rm3: RM3Config = field(default_factory=RM3Config)

    def validate(self, prefix: str = "retriever") -> None:
        check_choice(f"{prefix}.backend", self.backend, BACKENDS)
        check_choice(f"{prefix}.variant", self.variant, BACKENDS[self.backend].VARIANTS,
                     what=f"(offered by backend {self.backend})")
        if not self.k1 >= 0:
            raise ConfigError(f"{prefix}.k1", f"must be >= 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ConfigError(f"{prefix}.b", f"must be within [0, 1], got {self.b}")
        self.tokenizer.validate(f"{prefix}.tokenizer")
        self.rm3.validate(f"{prefix}.rm3")


class BM25:
    """Index passages once, then search many queries: returns top-k row indices and scores per query. It declares
    no facts: its tokenizer is its own, no later step counts with it."""

    facts = Facts()

    def __init__(self, config: BM25Config):
        self.config = config
        self.tokenize = Tokenizer(config.tokenizer)
        self._index = BACKENDS[config.backend](config.k1, config.b, config.variant, config.delta)
        self.identity = {"name": "bm25", **asdict(config)}
        if not config.rm3.active:  # runs cached before RM3 existed keep their key
            del self.identity["rm3"]
        self._texts: list[str] = []
        self._stats: dict[str, float] = {}

    def index(self, passages: Passages) -> "BM25":
        """Tokenize and index a batch of passages at a time: no token list of the whole corpus is ever held."""
        texts = self._texts = passages.texts  # RM3 reads its feedback passages back
        self._index.index(self.tokenize(texts[first:first + TOKENIZE_BATCH])
                          for first in range(0, len(texts), TOKENIZE_BATCH))
        size = self._index.size_bytes
        self._stats = {"index_size_bytes": float(size)} if size is not None else {}
        return self

    def stats(self) -> dict[str, float]:
        """What indexing cost: the index size where the backend reports it."""
        return dict(self._stats)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per query as (indices, scores); documents sharing no term with the query come back as -1."""
        tokens = self.tokenize(queries)
        if self.config.rm3.active:
            docs, scores = self._index.search_weighted(self._expanded(tokens), k)
        else:
            docs, scores = self._index.search(tokens, k)
        docs = np.where(scores > 0, docs, -1)
        return docs, scores

    def _expanded(self, tokens: list[list[str]]) -> list[dict[str, float]]:
        """Each query's RM3 term weights, from its top `fb_docs` passages in a first pass."""
        rm3 = self.config.rm3
        docs, scores = self._index.search(tokens, rm3.fb_docs)
        return [expanded_query(query, self.tokenize([self._texts[d] for d in row_docs]), row_scores.tolist(),
                               rm3.fb_terms, rm3.query_weight)
                for query, row_docs, row_scores in zip(tokens, docs, scores)]
