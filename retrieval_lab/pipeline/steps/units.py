"""Passages -> returned units (small-to-big)."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from retrieval_lab.chunking import Passages
from retrieval_lab.chunking.units import UnitConfig, unit_id
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query
from retrieval_lab.pipeline.trace import UNITS
from retrieval_lab.types import Run


class UnitsStep(Step):
    """Passages -> returned units (small-to-big): each passage's unit span, computed once per chain
    (`chunking.units`); a unit several passages map to is returned once, at the best passage's rank. Reads the
    passage run and the documents; cheap: recomputed, not cached."""

    label = UNITS
    stage_version = 1
    cached = False

    def __init__(self, config: UnitConfig, passages: Passages, starts: np.ndarray, ends: np.ndarray,
                 reads: tuple[str, str]):
        self.config, self.reads = config, reads  # reads: (the passage run, the documents)
        self.ids = [unit_id(doc, int(s), int(e)) for doc, s, e in zip(passages.doc_ids, starts, ends)]

    @property
    def identity(self) -> dict:
        return {"name": "units", "stage_version": self.stage_version, **asdict(self.config)}

    def one(self, hits: list[tuple[str, float]], documents: list[tuple[str, float]], rows: dict[str, int],
            passages: Passages, depth: int) -> list[tuple[str, float]]:
        """The top `depth` units, then the best unit of each top-`depth` document not among them yet: a document
        can return several units, so `depth` units may leave a returned document without any (search shows one)."""
        missing = {doc for doc, _ in documents}
        seen, units = set(), []
        for pid, score in hits:
            uid, doc = self.ids[rows[pid]], passages.doc_ids[rows[pid]]
            if uid not in seen and (len(units) < depth or doc in missing):
                seen.add(uid)
                units.append((uid, score))
                missing.discard(doc)
            if len(units) >= depth and not missing:
                break
        return units

    def of(self, run: Run, documents: Run, passages: Passages, depth: int) -> Run:
        """The units of a passage run and its documents outside the chain."""
        rows = passages.row_of()
        return Run({qid: self.one(hits, documents.get(qid, []), rows, passages, depth) for qid, hits in run.items()})

    def run(self, context: Context) -> StepResult:
        passage_run, documents = (result.run for result in context.inputs())
        rows = context.passages.row_of()
        units, latency = per_query(list(passage_run), lambda qid: self.one(
            passage_run[qid], documents.get(qid, []), rows, context.passages, context.depth))
        return StepResult(units, latency)
