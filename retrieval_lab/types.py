"""Plain data passed between pipeline stages: corpus, queries, graded qrels, ranked runs (and their TREC files:
runs `qid Q0 docid rank score tag`, qrels `qid 0 docid grade`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_lab.errors import DataError


def _digest(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True)
class Facts:
    """What a pipeline step declares for the steps after it (`pipeline.step`); a field left None is not declared.
    Here, not in the pipeline, so a stage (dense, BM25) declares its facts without importing the pipeline."""

    model: str | None = None  # the model's name, for messages ("embedder minilm_l6 is case-sensitive")
    tokenizer: Any = None  # the model's Hugging Face (fast) tokenizer: `chunker.tokenizer=embedder`, truncation
    max_tokens: int | None = None  # tokens the model reads of a passage; longer ones are truncated
    case_sensitive: bool | None = None  # whether "Protein" and "protein" differ to the model


@dataclass(frozen=True)
class Corpus:
    """Documents in file order. `text_of(i)` is what gets indexed when chunking is off."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    metadata: list[dict] = field(default_factory=list)  # per document (source file and page map, sections); may be
    # empty; not part of the fingerprint: it never changes what is retrieved

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        """Content hash: the cache key of everything computed from this corpus (hashed once per Corpus object: a
        million documents take seconds)."""
        digest = self.__dict__.get("_fingerprint")
        if digest is None:
            digest = _digest(x for triple in zip(self.ids, self.titles, self.texts) for x in triple)
            object.__setattr__(self, "_fingerprint", digest)
        return digest

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
        qrels = cls()
        for lineno, cols in _trec_rows(path, 4, "'qid 0 docid grade'"):
            try:
                grade = int(cols[3])
            except ValueError:
                raise DataError(path, f"grade {cols[3]!r} is not an integer", lineno) from None
            qrels.setdefault(cols[0], {})[cols[2]] = grade
        return qrels

    def to_trec(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for qid, docs in self.items():
                for doc_id, grade in docs.items():
                    fh.write(f"{qid} 0 {doc_id} {grade}\n")


class Run(dict):
    """query id -> [(doc id, score), ...] ranked best first (ties keep the order given)."""

    @classmethod
    def from_trec(cls, path: str | Path) -> "Run":
        """Each query's hits ordered by the rank column."""
        ranked: dict[str, list[tuple[int, str, float]]] = {}
        for lineno, cols in _trec_rows(path, 6, "'qid Q0 docid rank score tag'"):
            try:
                rank, score = int(cols[3]), float(cols[4])
            except ValueError:
                raise DataError(path, "rank must be an integer and score a number", lineno) from None
            ranked.setdefault(cols[0], []).append((rank, cols[2], score))
        return cls({q: [(d, s) for _, d, s in sorted(rows, key=lambda r: r[0])] for q, rows in ranked.items()})

    def to_trec(self, path: str | Path, tag: str = "retrieval-lab") -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for qid, hits in self.items():
                for rank, (doc_id, score) in enumerate(hits, start=1):
                    fh.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")

    def truncate(self, k: int) -> "Run":
        return Run({q: hits[:k] for q, hits in self.items()})

    @classmethod
    def from_arrays(cls, query_ids, unit_ids, indices: np.ndarray, scores: np.ndarray) -> "Run":
        """Build from top-k arrays of unit row indices (-1 = no hit) and their scores. Equal scores are put in
        trec_eval's order (unit id descending): search backends order ties arbitrarily, and bm25s differently for
        each k, so on ArguAna (near-duplicate arguments tie within the top 11 hits of 143 queries) nDCG@10 moved
        with the depth asked for (0.4093 at 11, 0.4096 at 101); in trec_eval's order the lab's metrics equal
        pytrec_eval's (BEIR's) on the same scores."""
        run = cls()
        for row, qid in enumerate(query_ids):
            hits = [(unit_ids[j], float(s)) for j, s in zip(indices[row], scores[row]) if j >= 0]
            if len({s for _, s in hits}) < len(hits):
                hits.sort(key=lambda h: h[0], reverse=True)
                hits.sort(key=lambda h: -h[1])  # stable: ties keep the id order
            run[qid] = hits
        return run


def _trec_rows(path: str | Path, columns: int, layout: str):
    """(line number, columns) of each non-blank line; a line with another column count is a DataError."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) != columns:
                raise DataError(path, f"expected {columns} columns {layout}, found {len(cols)}", lineno)
            yield lineno, cols
