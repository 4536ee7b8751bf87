"""A first stage: a searcher (BM25, dense + index) over the passages, searched deep enough to fill `depth`
documents per query."""
from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from retrieval_lab.chunking import Passages, passage_depth, unfilled_rows
from retrieval_lab.errors import LabError
from retrieval_lab.pipeline.step import LATENCY_SAMPLE, Context, Step, StepResult, ms_since
from retrieval_lab.types import Facts, Run


class FirstStage(Protocol):
    """A searcher over passages (`sparse.BM25`, `dense.DenseRetriever`), made by `pipeline.build.FIRST_STAGES`."""

    identity: dict  # everything that changes its output (config, model weights hash)
    facts: Facts  # what it declares for later steps (an embedder's tokenizer, max tokens, case sensitivity)

    def index(self, passages: Passages) -> object: ...

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def stats(self) -> dict[str, float]:
        """What indexing and searching cost so far (index size, build seconds, ANN recall, `spent_*`)."""


def _widen(array: np.ndarray, width: int, fill) -> np.ndarray:
    if array.shape[1] >= width:
        return array
    pad = np.full((array.shape[0], width - array.shape[1]), fill, dtype=array.dtype)
    return np.concatenate([array, pad], axis=1)


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(rows.shape[1] for rows, _ in parts)
    return (np.concatenate([_widen(rows, width, -1) for rows, _ in parts]),
            np.concatenate([_widen(scores.astype(np.float32), width, 0.0) for _, scores in parts]))


class FirstStageStep(Step):
    """A first stage searched deep enough that each query yields `depth` distinct documents: a query whose passages
    fill fewer documents (several chunks of one document) is searched again at twice the passage depth. `depth`:
    documents per query (a hybrid's `retriever.depth`; None: the chain's depth), one more where the query's own
    document is dropped afterwards (`ignore_identical_ids`)."""

    stage_version = 1

    def __init__(self, label: str, searcher: FirstStage, depth: int | None = None, aggregate: str = "max",
                 ignore_identical_ids: bool = False):
        self.label, self.searcher, self.depth = label, searcher, depth
        self.aggregate, self.ignore_identical_ids = aggregate, ignore_identical_ids
        self._indexed: Passages | None = None

    @property
    def identity(self) -> dict:
        return {"name": "first_stage", "stage_version": self.stage_version, "searcher": self.searcher.identity,
                "depth": self.depth, "aggregate": self.aggregate, "ignore_identical_ids": self.ignore_identical_ids,
                "latency_sample": LATENCY_SAMPLE}

    @property
    def facts(self) -> Facts:
        return self.searcher.facts

    def documents(self, depth: int) -> int:
        """Documents each query's passages must fill, at the chain's `depth`."""
        return (self.depth or depth) + int(self.ignore_identical_ids)

    def _index(self, passages: Passages) -> float:
        if self._indexed is passages:
            return 0.0
        t0 = time.perf_counter()
        self.searcher.index(passages)
        self._indexed = passages
        return time.perf_counter() - t0

    def _search_filled(self, texts: list[str], passages: Passages, n_docs: int,
                       depth: int) -> tuple[np.ndarray, np.ndarray]:
        k = passage_depth(passages, n_docs, depth)
        rows, scores = self.searcher.search(texts, k)
        todo = unfilled_rows(rows, passages, depth, self.aggregate)
        while todo and k < len(passages):
            k = min(len(passages), 2 * k)
            more_rows, more_scores = self.searcher.search([texts[i] for i in todo], k)
            rows, scores = _widen(rows, more_rows.shape[1], -1), _widen(scores, more_scores.shape[1], 0.0)
            rows[todo, :more_rows.shape[1]] = more_rows
            scores[todo, :more_scores.shape[1]] = more_scores
            todo = [todo[i] for i in unfilled_rows(more_rows, passages, depth, self.aggregate)]
        return rows, scores

    def _search(self, texts: list[str], passages: Passages, n_docs: int, depth: int):
        """Rows, scores and the latency of the sample: its queries searched alone, the rest in one batch."""
        parts, latency = [], []
        for text in texts[:LATENCY_SAMPLE]:
            t0 = time.perf_counter()
            parts.append(self._search_filled([text], passages, n_docs, depth))
            latency.append(ms_since(t0))
        if len(texts) > LATENCY_SAMPLE:
            parts.append(self._search_filled(texts[LATENCY_SAMPLE:], passages, n_docs, depth))
        rows, scores = _stack(parts)
        return rows, scores, np.array(latency)

    def run(self, context: Context) -> StepResult:
        queries, passages = context.queries, context.passages
        index_seconds = self._index(passages)
        t0 = time.perf_counter()
        rows, scores, latency = self._search(queries.texts, passages, len(context.corpus),
                                             self.documents(context.depth))
        search_seconds = time.perf_counter() - t0
        if len(queries) > 1 and (rows < 0).all():
            raise LabError(f"retriever {self.label} returned nothing for all {len(queries)} queries over "
                           f"{len(passages)} passages: the index is empty or the tokenizer removes every term")
        stats = {"index_seconds": index_seconds, "queries_per_second": len(queries) / max(search_seconds, 1e-9),
                 **self.searcher.stats()}
        named = {f"{self.label}_{name}": float(value) for name, value in stats.items()}
        spent = {name: value for name, value in named.items() if name.startswith(f"{self.label}_spent_")}
        costs = {name: value for name, value in named.items() if name not in spent}
        return StepResult(Run.from_arrays(queries.ids, passages.ids, rows, scores), latency, costs, spent)
