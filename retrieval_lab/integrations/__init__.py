"""The exported retriever inside RAG frameworks: `integrations.langchain` (a LangChain `BaseRetriever` returning
`Document`s) and `integrations.llama_index` (a LlamaIndex `BaseRetriever` returning `NodeWithScore`s), both made
with `from_export("best.yaml", k=10)`. Each needs its framework (`pip install retrieval-lab[langchain]` or
`[llama-index]`); nothing else in the lab imports this package.

Both return exactly `Retriever.search`'s hits, in its order, with the same metadata (`hit_metadata`).
"""
from __future__ import annotations

import asyncio
import bisect
import threading
from pathlib import Path
from typing import Any


class ExportSearch:
    """A loaded export searched one query at a time (the chain's caches are not shared across threads), from sync
    or async code."""

    def __init__(self, retriever, k: int = 10):
        if k <= 0:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.retriever, self.k = retriever, k
        self._lock = threading.Lock()
        corpus = retriever.corpus
        self._documents = dict(zip(corpus.ids, corpus.metadata)) if corpus.metadata else {}

    @classmethod
    def from_export(cls, path: str | Path, k: int = 10, overrides: list[str] | tuple[str, ...] = ()) -> "ExportSearch":
        from retrieval_lab import load_retriever

        return cls(load_retriever(path, list(overrides)), k)

    def hits(self, query: str) -> list[tuple[str, dict[str, Any]]]:
        """(text, metadata) of the top k, best first."""
        with self._lock:
            found = self.retriever.search(query, k=self.k)
            return [(hit["passage"], hit_metadata(hit, self._documents.get(hit["doc_id"]) or {}, rank))
                    for rank, hit in enumerate(found, 1)]

    async def ahits(self, query: str) -> list[tuple[str, dict[str, Any]]]:
        return await asyncio.to_thread(self.hits, query)


def heading_path(metadata: dict, start: int) -> list[str]:
    """Headings above character `start` of an imported document, outermost first: the search hit's own
    `heading_path` where the importer records nesting, else the heading of the section holding `start`."""
    sections = metadata.get("sections") or []
    starts = [s[0] for s in sections]
    row = bisect.bisect_right(starts, start) - 1
    if row < 0 or not sections[row][2]:
        return []
    return [str(sections[row][2])]


def hit_metadata(hit: dict, document: dict, rank: int) -> dict[str, Any]:
    """What a RAG application cites: the document id, score and rank, the unit's character offsets in the document
    text, and for imported documents (`document`: the corpus metadata) the source file, PDF page, offset in the
    file and heading path."""
    source = hit.get("source") or {}
    out = {"doc_id": hit["doc_id"], "score": float(hit["score"]), "rank": rank, "title": hit.get("title") or "",
           "start": int(hit["start"]), "end": int(hit["end"]), "source": source.get("file"),
           "page": source.get("page"), "source_offset": source.get("offset")}
    headings = hit.get("heading_path")
    out["heading_path"] = list(headings) if headings is not None else heading_path(document, hit["start"])
    return out
