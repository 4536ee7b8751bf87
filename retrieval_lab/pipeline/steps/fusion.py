"""Fusion of the first stages' runs, query by query (`fusion.fuse`)."""
from __future__ import annotations

from dataclasses import asdict

from retrieval_lab.fusion import FusionConfig, fuse
from retrieval_lab.pipeline.step import Context, Step, StepResult, per_query
from retrieval_lab.pipeline.trace import FUSION
from retrieval_lab.types import Run


class FusionStep(Step):
    label = FUSION
    stage_version = 1

    def __init__(self, config: FusionConfig, reads: tuple[str, ...]):
        self.config, self.reads = config, reads  # reads: the first stages' labels, in input order

    @property
    def identity(self) -> dict:
        return {"name": "fusion", "stage_version": self.stage_version, **asdict(self.config)}

    def run(self, context: Context) -> StepResult:
        runs = [result.run for result in context.inputs()]
        fused, latency = per_query(
            context.queries.ids, lambda qid: fuse([Run({qid: run.get(qid, [])}) for run in runs], self.config)[qid])
        return StepResult(fused, latency)
