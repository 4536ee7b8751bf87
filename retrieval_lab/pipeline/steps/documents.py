"""Passages -> documents, each document once."""
from __future__ import annotations

from retrieval_lab.chunking import Passages, aggregate_documents
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query
from retrieval_lab.pipeline.trace import DOCUMENTS
from retrieval_lab.types import Run


class DocumentsStep(Step):
    """Passages -> documents, each document once (`aggregate`: max, sum, first); BEIR's `ignore_identical_ids`
    drops a document whose id is the query's (ArguAna's queries are corpus documents). Cheap: recomputed, not
    cached."""

    label = DOCUMENTS
    stage_version = 1
    cached = False

    def __init__(self, aggregate: str = "max", ignore_identical_ids: bool = False, reads: tuple[str, ...] = ()):
        self.aggregate, self.ignore_identical_ids, self.reads = aggregate, ignore_identical_ids, reads

    @property
    def identity(self) -> dict:
        return {"name": "documents", "stage_version": self.stage_version, "aggregate": self.aggregate,
                "ignore_identical_ids": self.ignore_identical_ids}

    def one(self, qid: str, hits: list[tuple[str, float]], passages: Passages, depth: int) -> list[tuple[str, float]]:
        docs = aggregate_documents(hits, passages, depth + int(self.ignore_identical_ids), self.aggregate)
        return [(d, s) for d, s in docs if d != qid][:depth] if self.ignore_identical_ids else docs

    def of(self, run: Run, passages: Passages, depth: int) -> Run:
        """The documents of a passage run outside the chain (an input alone, the reranker's candidates)."""
        return Run({qid: self.one(qid, hits, passages, depth) for qid, hits in run.items()})

    def run(self, context: Context) -> StepResult:
        run = context.input().run
        docs, latency = per_query(list(run), lambda qid: self.one(qid, run[qid], context.passages, context.depth))
        return StepResult(docs, latency)
