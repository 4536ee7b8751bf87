"""A built chain over one corpus: `retrieve` a query set, `search` one query. Both run `Chain.run` at the
configured depth, so a query's ranking from `search` is the one the evaluation of that configuration scored."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking.units import parse_unit_id
from retrieval_lab.data.folder import source_location
from retrieval_lab.data.places import place_of
from retrieval_lab.pipeline.build import PipelineConfig, build_chain, read_config
from retrieval_lab.pipeline.steps import FirstStage
from retrieval_lab.pipeline.trace import Trace
from retrieval_lab.types import Corpus, Queries

SEARCH_QUERY_ID = "\x00search"  # never a document id, so `ignore_identical_ids` drops nothing from a search


class Retriever:
    def __init__(self, cfg: DictConfig, corpus: Corpus, cache: Cache | None = None,
                 settings: PipelineConfig | None = None, stages: list[FirstStage] | None = None,
                 source_root: Path | None = None):
        self.cfg = cfg
        self.source_root = source_root  # the folder imported documents came from: headings and links of hits
        self.settings = settings or read_config(cfg)
        self.chain = build_chain(cfg, corpus, cache, self.settings, stages)
        self._doc_row: dict[str, int] | None = None

    @property
    def corpus(self) -> Corpus:
        return self.chain.corpus

    @property
    def passages(self):
        return self.chain.passages

    def retrieve(self, queries: Queries) -> Trace:
        """Every query through the chain (first-stage runs cached), with each stage's run and latency."""
        return self.chain.run(queries, self.settings.eval.depth)

    def trace(self, text: str) -> Trace:
        """One query through the chain, nothing cached but the stages' own caches (embeddings, scores)."""
        return self.chain.run(Queries([SEARCH_QUERY_ID], [text]), self.settings.eval.depth, cache_runs=False)

    def search(self, text: str, k: int = 10, passages: int = 1) -> list[dict[str, Any]]:
        """Top-k documents for one query: id, score, title and its best returned unit (`unit` config: the chunk, a
        window around it, its section or the whole document) with the unit's character span and, for imported
        documents, where the unit starts in the source file (`source`: file, page for PDF, offset), the headings
        above it (`headings`, outermost first) and a `link` to that place (HTML: the nearest id before it; Markdown:
        the heading's slug; PDF: the page). `passages`: up to that many of the document's best units, best first,
        in `passages` (each with the same keys); the first is the one at the top level."""
        trace = self.trace(text)
        units: dict[str, list[tuple[int, int, float]]] = {}
        for uid, score in trace.units[SEARCH_QUERY_ID]:
            doc, start, end = parse_unit_id(uid)
            units.setdefault(doc, []).append((start, end, score))
        if self._doc_row is None:
            self._doc_row = self.corpus.index_of()
        hits = []
        for doc, score in trace.documents[SEARCH_QUERY_ID][:k]:
            row = self._doc_row[doc]
            metadata = self.corpus.metadata[row] if self.corpus.metadata else {}
            shown = [self._unit(row, metadata, start, end, unit_score)
                     for start, end, unit_score in units[doc][:max(passages, 1)]]
            hits.append({"doc_id": doc, "score": score, "title": self.corpus.titles[row], **shown[0],
                         "passages": shown})
        return hits

    def _unit(self, row: int, metadata: dict, start: int, end: int, score: float) -> dict[str, Any]:
        source = source_location(metadata, start) if metadata.get("source") else None
        place = place_of(metadata, start, self.source_root) if source else None
        return {"passage": self.corpus.texts[row][start:end], "start": start, "end": end, "unit_score": score,
                "source": source, "headings": place.headings if place else [],
                "link": place.link if place else None}
