"""Chunking: documents -> passages, the units every first stage indexes.

A passage keeps its document id and the character span it covers in the document text, so document-level and
span-level evaluation both work whatever the chunker. Chunkers are selected by name from `CHUNKERS`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval_lab.types import Corpus, _digest


@dataclass(frozen=True)
class Passages:
    ids: list[str]  # passage id: the doc id for whole documents, "<doc id>#<index>" for chunks
    doc_ids: list[str]
    texts: list[str]  # what gets indexed (the title prepended when configured)
    starts: np.ndarray  # character span in the document text: doc_text[start:end] is the chunk's own text
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        return _digest(x for pair in zip(self.ids, self.texts) for x in pair)


def with_title(title: str, text: str) -> str:
    return f"{title} {text}".strip() if title else text


def whole_documents(corpus: Corpus, title: bool = True) -> Passages:
    """One passage per document (chunker `none`): title and text indexed together by default."""
    texts = [with_title(t, x) if title else x for t, x in zip(corpus.titles, corpus.texts)]
    return Passages(ids=list(corpus.ids), doc_ids=list(corpus.ids), texts=texts,
                    starts=np.zeros(len(corpus), dtype=np.int64),
                    ends=np.array([len(x) for x in corpus.texts], dtype=np.int64))
