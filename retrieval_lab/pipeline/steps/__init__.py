"""The chain's steps, one file each (`pipeline.step.Step`): the adapters between the chain's `Context` and the
stages' own functions (sparse/dense search, fusion, rerank, document aggregation, return units)."""
from retrieval_lab.pipeline.steps.documents import DocumentsStep
from retrieval_lab.pipeline.steps.first_stage import FirstStage, FirstStageStep
from retrieval_lab.pipeline.steps.fusion import FusionStep
from retrieval_lab.pipeline.steps.rerank import RerankStep
from retrieval_lab.pipeline.steps.units import UnitsStep

__all__ = ["DocumentsStep", "FirstStage", "FirstStageStep", "FusionStep", "RerankStep", "UnitsStep"]
