"""Passages: the units every first stage indexes, as plain data.

A passage keeps its document id, its chunk index and the character span it covers in the document text
(`doc_text[start:end]` is the chunk's own text; the title, when configured, is prepended only to the indexed
text), so document-level and span-level evaluation both work whatever the chunker.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval_lab.types import Corpus, _digest


class PassageTexts(Sequence):
    """What each passage indexes, made when read from the corpus it points into: its span of the document text,
    the title prepended when configured. Passages never hold a second copy of the corpus (a million SciFact-sized
    documents are 1.5 GB of text)."""

    def __init__(self, corpus: Corpus, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, title: bool):
        self._titles, self._texts, self._title = corpus.titles, corpus.texts, title
        self._rows, self._starts, self._ends = rows, starts, ends

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, row: int, start: int, end: int) -> str:
        text = self._texts[row]
        own = text if start == 0 and end == len(text) else text[start:end]
        return with_title(self._titles[row], own) if self._title else own

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._make(int(self._rows[i]), int(self._starts[i]), int(self._ends[i]))

    def __iter__(self):
        for start in range(0, len(self), 4096):  # plain ints, a block at a time
            stop = start + 4096
            yield from map(self._make, self._rows[start:stop].tolist(), self._starts[start:stop].tolist(),
                           self._ends[start:stop].tolist())

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    __hash__ = None


@dataclass(frozen=True)
class Passages:
    ids: list[str]  # passage id: the doc id for whole documents, "<doc id>#<index>" for chunks
    doc_ids: list[str]
    texts: Sequence[str]  # what gets indexed (the title prepended when configured): a PassageTexts view or a list
    starts: np.ndarray  # character span in the document text: doc_text[start:end] is the chunk's own text
    ends: np.ndarray
    chunk_index: np.ndarray | None = None  # position of the chunk within its document (0 = first)
    n_tokens: np.ndarray | None = None  # tokens of the span text under the chunker's tokenizer
    meta: dict = field(default_factory=dict)  # chunker name, timings

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        """Content hash of ids and indexed texts (computed once per Passages object)."""
        digest = self.__dict__.get("_fingerprint")
        if digest is None:
            digest = _digest(x for pair in zip(self.ids, self.texts) for x in pair)
            object.__setattr__(self, "_fingerprint", digest)
        return digest

    @property
    def is_whole_documents(self) -> bool:
        return self.ids == self.doc_ids

    def row_of(self) -> dict[str, int]:
        """passage id -> row (built once per Passages object)."""
        rows = self.__dict__.get("_row_of")
        if rows is None:
            rows = {pid: i for i, pid in enumerate(self.ids)}
            object.__setattr__(self, "_row_of", rows)
        return rows

    def doc_id_array(self) -> np.ndarray:
        """`doc_ids` as a numpy array (built once per Passages object: a million ids take 0.1 s, per query)."""
        array = self.__dict__.get("_doc_id_array")
        if array is None:
            array = np.asarray(self.doc_ids)
            object.__setattr__(self, "_doc_id_array", array)
        return array

    def first_chunk(self, row: int) -> bool:
        return self.chunk_index is None or int(self.chunk_index[row]) == 0


def with_title(title: str, text: str) -> str:
    return f"{title} {text}".strip() if title else text


def whole_documents(corpus: Corpus, title: bool = True) -> Passages:
    """One passage per document (chunker `none`): title and text indexed together by default."""
    n = len(corpus)
    ends = np.fromiter(map(len, corpus.texts), dtype=np.int64, count=n)
    return Passages(ids=list(corpus.ids), doc_ids=list(corpus.ids),
                    texts=PassageTexts(corpus, np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64), ends, title),
                    starts=np.zeros(n, dtype=np.int64), ends=ends,
                    chunk_index=np.zeros(n, dtype=np.int64), meta={"chunker": "none"})
