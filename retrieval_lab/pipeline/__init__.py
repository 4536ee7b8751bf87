"""The chain: dataset -> passages -> first-stage runs -> fusion -> rerank -> documents -> evaluation.

- `build`: the one place a composed config is read (`read_config`, `validate`) and turned into a chain.
- `step`: the one step interface (`Step`: identity, facts, reads, `run(Context) -> StepResult`).
- `steps`: the steps, one file each (first stage, fusion, rerank, documents, units).
- `chain`: `Chain.run`, which both evaluation and `search` call; it caches every step the same way.
- `trace`: what a pass produced: every stage's run, per-query latency and costs.
- `retriever`: `Retriever.retrieve` (a query set) and `Retriever.search` (one query) over a built chain.
- `experiment`: `run_experiment`, one configuration evaluated.
- `roundtrip`: one configuration over a BEIR dataset and over its corpus imported from a folder, compared.

Every step's output is cached under a hash of its identity and inputs, so a sweep that changes only the fusion
weights replays the first-stage runs instead of searching again.
"""
from retrieval_lab.pipeline.build import (FIRST_STAGES, STEPS, EvalSettings, PipelineConfig, build_chain,
                                          embedder_tokens, first_stage_specs, read_config, unused_config_groups,
                                          validate)
from retrieval_lab.pipeline.chain import Chain
from retrieval_lab.pipeline.step import LATENCY_SAMPLE, Context, Step, StepResult
from retrieval_lab.pipeline.steps import DocumentsStep
from retrieval_lab.pipeline.experiment import Outcome, run_experiment, truncation_stats
from retrieval_lab.pipeline.retriever import Retriever
from retrieval_lab.pipeline.trace import Trace

__all__ = ["FIRST_STAGES", "LATENCY_SAMPLE", "STEPS", "Chain", "Context", "DocumentsStep", "EvalSettings", "Outcome",
           "PipelineConfig", "Retriever", "Step", "StepResult", "Trace", "build_chain", "embedder_tokens",
           "first_stage_specs", "read_config", "run_experiment", "truncation_stats", "unused_config_groups", "validate"]
