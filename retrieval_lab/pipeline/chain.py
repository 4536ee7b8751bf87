"""The chain: passages -> first-stage runs -> fusion -> rerank -> documents and returned units, one step per stage.

`Chain.run(queries, depth)` is the only way through it: evaluating a query set and searching one query both call
it and both get a `Trace` back. Every step works query by query, so a query's ranking never depends on which other
queries were asked with it; the first `LATENCY_SAMPLE` queries are searched one at a time and timed, which is the
latency a user of `search` sees.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages, aggregate_documents, passage_depth, unfilled_rows
from retrieval_lab.errors import LabError
from retrieval_lab.fusion import FusionConfig, fuse
from retrieval_lab.chunking.units import unit_id
from retrieval_lab.pipeline.trace import DOCUMENTS, FUSION, RERANK, UNITS, Trace
from retrieval_lab.rerank import RerankerConfig, rerank
from retrieval_lab.types import Corpus, Queries, Run

LATENCY_SAMPLE = 50  # queries searched one at a time and timed (p50/p95 latency)


class FirstStage(Protocol):
    """A first-stage retriever over passages (BM25, dense + index)."""

    identity: dict  # everything that changes its output (config, model weights hash): the cache key

    def index(self, passages: Passages) -> None: ...

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _widen(array: np.ndarray, width: int, fill) -> np.ndarray:
    if array.shape[1] >= width:
        return array
    pad = np.full((array.shape[0], width - array.shape[1]), fill, dtype=array.dtype)
    return np.concatenate([array, pad], axis=1)


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(rows.shape[1] for rows, _ in parts)
    return (np.concatenate([_widen(rows, width, -1) for rows, _ in parts]),
            np.concatenate([_widen(scores.astype(np.float32), width, 0.0) for _, scores in parts]))


class FirstStageStep:
    """A first stage searched deep enough that each query yields `depth` distinct documents: a query whose passages
    fill fewer documents (several chunks of one document) is searched again at twice the passage depth."""

    def __init__(self, label: str, stage: FirstStage, cache: Cache):
        self.label, self.stage, self.cache = label, stage, cache
        self._indexed: Passages | None = None

    def _index(self, passages: Passages) -> float:
        if self._indexed is passages:
            return 0.0
        t0 = time.perf_counter()
        self.stage.index(passages)
        self._indexed = passages
        return time.perf_counter() - t0

    def _search_filled(self, texts: list[str], passages: Passages, n_docs: int, depth: int,
                       aggregate: str) -> tuple[np.ndarray, np.ndarray]:
        k = passage_depth(passages, n_docs, depth)
        rows, scores = self.stage.search(texts, k)
        todo = unfilled_rows(rows, passages, depth, aggregate)
        while todo and k < len(passages):
            k = min(len(passages), 2 * k)
            more_rows, more_scores = self.stage.search([texts[i] for i in todo], k)
            rows, scores = _widen(rows, more_rows.shape[1], -1), _widen(scores, more_scores.shape[1], 0.0)
            rows[todo, :more_rows.shape[1]] = more_rows
            scores[todo, :more_scores.shape[1]] = more_scores
            todo = [todo[i] for i in unfilled_rows(more_rows, passages, depth, aggregate)]
        return rows, scores

    def _search(self, texts: list[str], passages: Passages, n_docs: int, depth: int, aggregate: str):
        """Rows, scores and the latency of the sample: its queries searched alone, the rest in one batch."""
        parts, latency = [], []
        for text in texts[:LATENCY_SAMPLE]:
            t0 = time.perf_counter()
            parts.append(self._search_filled([text], passages, n_docs, depth, aggregate))
            latency.append(_ms_since(t0))
        if len(texts) > LATENCY_SAMPLE:
            parts.append(self._search_filled(texts[LATENCY_SAMPLE:], passages, n_docs, depth, aggregate))
        rows, scores = _stack(parts)
        return rows, scores, np.array(latency)

    def _compute(self, queries: Queries, passages: Passages, n_docs: int, depth: int, aggregate: str):
        index_seconds = self._index(passages)
        t0 = time.perf_counter()
        rows, scores, latency = self._search(queries.texts, passages, n_docs, depth, aggregate)
        search_seconds = time.perf_counter() - t0
        if len(queries) > 1 and (rows < 0).all():
            raise LabError(f"retriever {self.label} returned nothing for all {len(queries)} queries over "
                           f"{len(passages)} passages: the index is empty or the tokenizer removes every term")
        costs = {"index_seconds": index_seconds, "queries_per_second": len(queries) / max(search_seconds, 1e-9),
                 **getattr(self.stage, "last_index_stats", {})}
        return {"indices": rows, "scores": scores, "latency_ms": latency}, None, costs

    def run(self, queries: Queries, passages: Passages, n_docs: int, depth: int, aggregate: str, trace: Trace,
            cache_runs: bool = True) -> Run:
        """Search every query; with `cache_runs` the run is a cache entry (key: stage identity, passages, queries,
        depth, aggregation), so a sweep that changes only later stages replays it."""
        if cache_runs:
            inputs = {"stage": self.stage.identity, "passages": passages.fingerprint,
                      "queries": queries.fingerprint, "documents": depth, "aggregate": aggregate,
                      "latency_sample": LATENCY_SAMPLE}
            entry = self.cache.get_or_compute(
                "first_stage_runs", inputs, lambda: self._compute(queries, passages, n_docs, depth, aggregate))
            arrays, costs, hit = entry.arrays, entry.meta, entry.hit
            if hit:  # money and tokens spent computing the run were spent then, not now
                costs = {name: 0.0 if name.startswith("spent_") else value for name, value in costs.items()}
        else:
            arrays, _, costs = self._compute(queries, passages, n_docs, depth, aggregate)
            hit = False
        run = Run.from_arrays(queries.ids, passages.ids, np.asarray(arrays["indices"]), np.asarray(arrays["scores"]))
        costs = {f"{self.label}_{name}": float(value) for name, value in costs.items()}
        costs[f"{self.label}_cache_hit"] = float(hit)
        trace.record(self.label, run, np.asarray(arrays["latency_ms"]), costs)
        return run


def _per_query(query_ids: list[str], one) -> tuple[Run, list[float]]:
    """`one(query id)` for each query, timed for the latency sample."""
    out, latency = Run(), []
    for row, qid in enumerate(query_ids):
        t0 = time.perf_counter()
        out[qid] = one(qid)
        if row < LATENCY_SAMPLE:
            latency.append(_ms_since(t0))
    return out, latency


@dataclass
class FusionStep:
    config: FusionConfig

    def run(self, runs: list[Run], queries: Queries, trace: Trace) -> Run:
        fused, latency = _per_query(
            queries.ids, lambda qid: fuse([Run({qid: run.get(qid, [])}) for run in runs], self.config)[qid])
        trace.record(FUSION, fused, latency)
        return fused


class RerankStep:
    """Rescore each query's top `config.depth` passages; latency is the model's time per query: its pairs times the
    seconds per pair measured when they were scored (the score cache replays that figure on a hit)."""

    def __init__(self, config: RerankerConfig, scorer):
        self.config, self.scorer = config, scorer
        self._text_of: tuple[Passages, dict[str, str]] | None = None

    def _texts(self, passages: Passages) -> dict[str, str]:
        if self._text_of is None or self._text_of[0] is not passages:
            self._text_of = (passages, dict(zip(passages.ids, passages.texts)))
        return self._text_of[1]

    def run(self, run: Run, queries: Queries, passages: Passages, trace: Trace) -> Run:
        reranked, costs = rerank(run, queries, self._texts(passages), self.scorer, self.config.depth,
                                 self.config.interpolate)
        per_pair = costs["rerank_seconds_per_pair"]
        latency = [1000 * per_pair * min(self.config.depth, len(run[qid])) for qid in queries.ids[:LATENCY_SAMPLE]]
        trace.record(RERANK, reranked, latency, costs)
        return reranked


@dataclass
class DocumentsStep:
    """Passages -> documents, each document once (`aggregate`: max, sum, first); BEIR's `ignore_identical_ids`
    drops a document whose id is the query's (ArguAna's queries are corpus documents)."""

    aggregate: str = "max"
    ignore_identical_ids: bool = False

    def one(self, qid: str, hits: list[tuple[str, float]], passages: Passages, depth: int) -> list[tuple[str, float]]:
        docs = aggregate_documents(hits, passages, depth + int(self.ignore_identical_ids), self.aggregate)
        return [(d, s) for d, s in docs if d != qid][:depth] if self.ignore_identical_ids else docs

    def of(self, run: Run, passages: Passages, depth: int) -> Run:
        """The documents of a passage run outside the chain (an input alone, the reranker's candidates)."""
        return Run({qid: self.one(qid, hits, passages, depth) for qid, hits in run.items()})

    def run(self, run: Run, passages: Passages, depth: int, trace: Trace) -> Run:
        docs, latency = _per_query(list(run), lambda qid: self.one(qid, run[qid], passages, depth))
        trace.record(DOCUMENTS, docs, latency)
        return docs


class UnitsStep:
    """Passages -> returned units (small-to-big): each passage's unit span, computed once per chain
    (`chunking.units`); a unit several passages map to is returned once, at the best passage's rank."""

    def __init__(self, passages: Passages, starts: np.ndarray, ends: np.ndarray):
        self.ids = [unit_id(doc, int(s), int(e)) for doc, s, e in zip(passages.doc_ids, starts, ends)]

    def run(self, run: Run, passages: Passages, depth: int, trace: Trace, documents: Run) -> Run:
        """The top `depth` units, then the best unit of each top-`depth` document not among them yet: a document
        can return several units, so `depth` units may leave a returned document without any (search shows one)."""
        rows = passages.row_of()

        def one(qid):
            missing = {doc for doc, _ in documents.get(qid, [])}
            seen, units = set(), []
            for pid, score in run[qid]:
                uid, doc = self.ids[rows[pid]], passages.doc_ids[rows[pid]]
                if uid not in seen and (len(units) < depth or doc in missing):
                    seen.add(uid)
                    units.append((uid, score))
                    missing.discard(doc)
                if len(units) >= depth and not missing:
                    break
            return units

        units, latency = _per_query(list(run), one)
        trace.record(UNITS, units, latency)
        return units


@dataclass
class Chain:
    corpus: Corpus
    passages: Passages
    first_stages: list[FirstStageStep]
    fusion: FusionStep | None
    rerank: RerankStep | None
    documents: DocumentsStep
    units: UnitsStep
    first_stage_depth: int | None = None  # passages each hybrid input retrieves (None: the final depth)

    def run(self, queries: Queries, depth: int, cache_runs: bool = True) -> Trace:
        """The top `depth` documents per query, with every stage's run, latency and costs."""
        trace = Trace(list(queries.ids))
        first_depth = (self.first_stage_depth or depth) + int(self.documents.ignore_identical_ids)
        runs = [step.run(queries, self.passages, len(self.corpus), first_depth, self.documents.aggregate, trace,
                         cache_runs) for step in self.first_stages]
        run = self.fusion.run(runs, queries, trace) if self.fusion else runs[0]
        if self.rerank:
            run = self.rerank.run(run, queries, self.passages, trace)
        documents = self.documents.run(run, self.passages, depth, trace)
        self.units.run(run, self.passages, depth, trace, documents)
        trace.costs["index_seconds"] = sum(trace.costs.get(f"{step.label}_index_seconds", 0.0)
                                           for step in self.first_stages)
        return trace
