"""Plain data passed between pipeline stages: corpus, queries, graded qrels, ranked runs."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _digest(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True)
class Corpus:
    """Documents in file order. `text_of(i)` is what gets indexed when chunking is off."""

    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        """Content hash: the cache key of everything computed from this corpus."""
        return _digest(x for triple in zip(self.ids, self.titles, self.texts) for x in triple)

    def index_of(self) -> dict[str, int]:
        return {doc_id: i for i, doc_id in enumerate(self.ids)}


@dataclass(frozen=True)
class Queries:
    ids: list[str]
    texts: list[str]
    metadata: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        return _digest(x for pair in zip(self.ids, self.texts) for x in pair)

    def subset(self, keep: set[str]) -> "Queries":
        rows = [i for i, q in enumerate(self.ids) if q in keep]
        meta = [self.metadata[i] for i in rows] if self.metadata else []
        return Queries([self.ids[i] for i in rows], [self.texts[i] for i in rows], meta)


class Qrels(dict):
    """query id -> {doc id: graded relevance}. Relevance 0 means judged non-relevant."""

    @property
    def fingerprint(self) -> str:
        return _digest(f"{q}\t{d}\t{r}" for q in sorted(self) for d, r in sorted(self[q].items()))

    @classmethod
    def from_trec(cls, path: str | Path) -> "Qrels":
        from retrieval_lab.evaluate.trec import read_trec_qrels

        return read_trec_qrels(path)

    def to_trec(self, path: str | Path) -> None:
        from retrieval_lab.evaluate.trec import write_trec_qrels

        write_trec_qrels(self, path)


class Run(dict):
    """query id -> [(doc id, score), ...] ranked best first (ties keep the order given)."""

    @classmethod
    def from_trec(cls, path: str | Path) -> "Run":
        from retrieval_lab.evaluate.trec import read_trec_run

        return read_trec_run(path)

    def to_trec(self, path: str | Path, tag: str = "retrieval-lab") -> None:
        from retrieval_lab.evaluate.trec import write_trec_run

        write_trec_run(self, path, tag)

    def truncate(self, k: int) -> "Run":
        return Run({q: hits[:k] for q, hits in self.items()})

    @classmethod
    def from_arrays(cls, query_ids, unit_ids, indices: np.ndarray, scores: np.ndarray) -> "Run":
        """Build from top-k arrays of unit row indices (-1 = no hit) and their scores."""
        run = cls()
        for row, qid in enumerate(query_ids):
            run[qid] = [(unit_ids[j], float(s)) for j, s in zip(indices[row], scores[row]) if j >= 0]
        return run
