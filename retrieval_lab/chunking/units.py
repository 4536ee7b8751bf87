"""Returned units (small-to-big): index small chunks, hand the reader a larger unit around each retrieved chunk.

- `chunk`: the chunk itself;
- `window`: the chunk with `window` neighbouring chunks of its document on each side;
- `section`: the heading-delimited section holding the chunk's start (sections come from the document importer,
  `Corpus.metadata[i]["sections"]`; a document without sections is one section);
- `document`: the whole document.

A unit is a character span of its document's text. Several retrieved chunks that map to one unit return it once,
at the rank of the best of them. Units are selected by name from `UNITS`, each a function from the passages and the
corpus to one (start, end) per passage row, computed once per chain.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from retrieval_lab.chunking.passages import Passages
from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError
from retrieval_lab.types import Corpus


@dataclass(frozen=True)
class UnitConfig:
    name: str = "chunk"  # chunk | window | section | document
    window: int = 1  # window: neighbouring chunks on each side

    def validate(self, prefix: str = "unit") -> None:
        check_choice(f"{prefix}.name", self.name, UNITS)
        if self.window < 0:
            raise ConfigError(f"{prefix}.window", f"must be >= 0, got {self.window}")


Spans = tuple[np.ndarray, np.ndarray]


def _chunk(passages: Passages, corpus: Corpus, config: UnitConfig) -> Spans:
    return np.asarray(passages.starts), np.asarray(passages.ends)


def _document(passages: Passages, corpus: Corpus, config: UnitConfig) -> Spans:
    row = corpus.index_of()
    ends = np.array([len(corpus.texts[row[d]]) for d in passages.doc_ids], dtype=np.int64)
    return np.zeros(len(passages), dtype=np.int64), ends


def _window(passages: Passages, corpus: Corpus, config: UnitConfig) -> Spans:
    """Chunks of one document are consecutive rows in chunk order: a window is a run of neighbouring rows."""
    starts, ends = np.asarray(passages.starts), np.asarray(passages.ends)
    doc_ids = passages.doc_ids
    out_starts, out_ends = starts.copy(), ends.copy()
    first = 0
    for row in range(len(passages) + 1):
        if row == len(passages) or doc_ids[row] != doc_ids[first]:  # rows first..row-1 are one document
            for r in range(first, row):
                lo, hi = max(first, r - config.window), min(row - 1, r + config.window)
                out_starts[r], out_ends[r] = starts[lo:hi + 1].min(), ends[lo:hi + 1].max()
            first = row
    return out_starts, out_ends


def _section(passages: Passages, corpus: Corpus, config: UnitConfig) -> Spans:
    row = corpus.index_of()
    metadata = corpus.metadata or [{}] * len(corpus)
    bounds: dict[str, tuple[list[int], list[int]]] = {}
    out_starts = np.zeros(len(passages), dtype=np.int64)
    out_ends = np.zeros(len(passages), dtype=np.int64)
    for r, (doc, start) in enumerate(zip(passages.doc_ids, passages.starts)):
        if doc not in bounds:
            sections = sorted((int(s), int(e)) for s, e, *_ in metadata[row[doc]].get("sections") or [])
            bounds[doc] = ([s for s, _ in sections], [e for _, e in sections])
        section_starts, section_ends = bounds[doc]
        i = bisect.bisect_right(section_starts, int(start)) - 1
        if i >= 0 and int(start) < section_ends[i]:
            out_starts[r], out_ends[r] = section_starts[i], section_ends[i]
        else:  # no section holds it (or the document has none): the whole document
            out_starts[r], out_ends[r] = 0, len(corpus.texts[row[doc]])
    return out_starts, out_ends


UNITS: dict[str, Callable[[Passages, Corpus, UnitConfig], Spans]] = {
    "chunk": _chunk, "window": _window, "section": _section, "document": _document}


def unit_spans(passages: Passages, corpus: Corpus, config: UnitConfig) -> Spans:
    """(start, end) of the unit each passage row returns, in its document's text."""
    return UNITS[config.name](passages, corpus, config)


def unit_id(doc_id: str, start: int, end: int) -> str:
    return f"{doc_id}@{start}-{end}"


def parse_unit_id(uid: str) -> tuple[str, int, int]:
    """(doc id, start, end) of a unit id; doc ids may contain '@' themselves, the span never does."""
    doc_id, span = uid.rsplit("@", 1)
    start, end = span.split("-")
    return doc_id, int(start), int(end)


def unit_spans_of(run) -> dict[str, list[tuple[str, int, int]]]:
    """A run of returned units as (doc id, start, end) per query, in rank order (what span metrics score)."""
    return {qid: [parse_unit_id(uid) for uid, _ in hits] for qid, hits in run.items()}
