"""The chain: dataset -> passages -> first-stage runs -> fusion -> rerank -> documents -> evaluation.

- `build`: the one place a composed config is read (`read_config`, `validate`) and turned into a chain.
- `chain`: the steps and `Chain.run`, which both evaluation and `search` call.
- `trace`: what a pass produced: every stage's run, per-query latency and costs.
- `retriever`: `Retriever.retrieve` (a query set) and `Retriever.search` (one query) over a built chain.
- `experiment`: `run_experiment`, one configuration evaluated.

Every stage's output is cached under a hash of its inputs, so a sweep that changes only the fusion weights replays
the first-stage runs instead of searching again.
"""
from retrieval_lab.pipeline.build import (FIRST_STAGES, EvalSettings, PipelineConfig, build_chain, embedder_tokens,
                                          first_stage_specs, read_config, unused_config_groups, validate)
from retrieval_lab.pipeline.chain import LATENCY_SAMPLE, Chain, DocumentsStep
from retrieval_lab.pipeline.experiment import Outcome, run_experiment, truncation_stats
from retrieval_lab.pipeline.retriever import Retriever
from retrieval_lab.pipeline.trace import Trace

__all__ = ["FIRST_STAGES", "LATENCY_SAMPLE", "Chain", "DocumentsStep", "EvalSettings", "Outcome", "PipelineConfig", "Retriever",
           "Trace", "build_chain", "embedder_tokens", "first_stage_specs", "read_config", "run_experiment",
           "truncation_stats", "unused_config_groups", "validate"]
