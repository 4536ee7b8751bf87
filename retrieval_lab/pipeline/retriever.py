"""A built chain over one corpus: `retrieve` a query set, `search` one query. Both run `Chain.run` at the
configured depth, so a query's ranking from `search` is the one the evaluation of that configuration scored."""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking.units import parse_unit_id
from retrieval_lab.data.folder import source_location
from retrieval_lab.pipeline.build import PipelineConfig, build_chain, read_config
from retrieval_lab.pipeline.chain import FirstStage
from retrieval_lab.pipeline.trace import Trace
from retrieval_lab.types import Corpus, Queries

SEARCH_QUERY_ID = "\x00search"  # never a document id, so `ignore_identical_ids` drops nothing from a search


class Retriever:
    def __init__(self, cfg: DictConfig, corpus: Corpus, cache: Cache | None = None,
                 settings: PipelineConfig | None = None, stages: list[FirstStage] | None = None):
        self.cfg = cfg
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

    def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        """Top-k documents for one query: id, score, title and its best returned unit (`unit` config: the chunk, a
        window around it, its section or the whole document) with the unit's character span and, for imported
        documents, where the unit starts in the source file (`source`: file, page for PDF, offset)."""
        trace = self.trace(text)
        best_unit: dict[str, tuple[int, int]] = {}
        for uid, _ in trace.units[SEARCH_QUERY_ID]:
            doc, start, end = parse_unit_id(uid)
            best_unit.setdefault(doc, (start, end))
        if self._doc_row is None:
            self._doc_row = self.corpus.index_of()
        hits = []
        for doc, score in trace.documents[SEARCH_QUERY_ID][:k]:
            row = self._doc_row[doc]
            start, end = best_unit[doc]
            metadata = self.corpus.metadata[row] if self.corpus.metadata else {}
            source = source_location(metadata, start) if metadata.get("source") else None
            hits.append({"doc_id": doc, "score": score, "title": self.corpus.titles[row],
                         "passage": self.corpus.texts[row][start:end], "start": start, "end": end, "source": source})
        return hits
