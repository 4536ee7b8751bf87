"""The chain: passages -> first-stage runs -> fusion -> rerank -> documents and returned units, one `Step` each.

`Chain.run(queries, depth)` is the only way through it: evaluating a query set and searching one query both call
it and both get a `Trace` back. Every step works query by query, so a query's ranking never depends on which other
queries were asked with it; the first `LATENCY_SAMPLE` queries are searched one at a time and timed, which is the
latency a user of `search` sees.

Every step is cached the same way (`Cache.get_or_compute`, cache stage `step_runs`): the key is the step's identity,
the keys of the earlier results it reads, the queries, the passages and the depth. A changed setting of one step
replays every step before it from the cache (a changed reranker setting replays the fused run, a changed fusion
weight the first-stage runs) and recomputes it and the steps after it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from retrieval_lab.cache import Cache, content_key
from retrieval_lab.chunking import Passages
from retrieval_lab.pipeline.step import (LATENCY_SAMPLE, Context, Step, StepResult, run_from_entry,
                                         run_to_entry)
from retrieval_lab.pipeline.steps import DocumentsStep, FirstStageStep
from retrieval_lab.pipeline.trace import DOCUMENTS, Trace
from retrieval_lab.types import Corpus, Facts, Queries

__all__ = ["LATENCY_SAMPLE", "Chain"]


class StepFacts(Mapping):
    """The facts of the steps run so far, by label, each read only when asked for."""

    def __init__(self, steps: list[Step]):
        self._steps = {step.label: step for step in steps}

    def __getitem__(self, label: str) -> Facts:
        return self._steps[label].facts

    def __iter__(self) -> Iterator[str]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)


@dataclass
class Chain:
    corpus: Corpus
    passages: Passages
    steps: list[Step]  # in order: first stages, then fusion, rerank, ..., documents, units
    cache: Cache

    def __post_init__(self):
        labels = [step.label for step in self.steps]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"two steps are labelled {', '.join(twice)}")  # build.py's checks should catch it

    @property
    def first_stages(self) -> list[FirstStageStep]:
        return [step for step in self.steps if isinstance(step, FirstStageStep)]

    @property
    def documents(self) -> DocumentsStep:
        return self.step(DOCUMENTS)

    def step(self, label: str) -> Step:
        return next(step for step in self.steps if step.label == label)

    def run(self, queries: Queries, depth: int, cache_runs: bool = True) -> Trace:
        """The top `depth` documents per query, with every step's run, latency and costs; with `cache_runs` each
        cached step's result is a cache entry (a search of one query stores none, and computes no key)."""
        trace = Trace(list(queries.ids))
        context = Context(queries, self.corpus, self.passages, depth)
        inputs = {"queries": queries.fingerprint, "passages": self.passages.fingerprint, "depth": depth} \
            if cache_runs else None
        for done, step in enumerate(self.steps):
            context.reads, context.facts = tuple(step.reads), StepFacts(self.steps[:done])
            result = self._run(step, context, inputs)
            context.results[step.label] = result
            trace.record(step.label, result.run, result.latency_ms, {**result.costs, **result.spent})
        trace.costs["index_seconds"] = sum(trace.costs.get(f"{step.label}_index_seconds", 0.0)
                                           for step in self.first_stages)
        return trace

    def _run(self, step: Step, context: Context, inputs: dict | None) -> StepResult:
        """The step's result: computed, or replayed from the cache (`inputs`: what every key holds; None: no
        caching). The key is the step's identity, the keys of the results it reads and `inputs`."""
        if inputs is None or not step.cached:
            result = step.run(context)
            if step.cached:
                result.costs[f"{step.label}_cache_hit"] = 0.0
            if inputs is not None:
                result.key = content_key("step_runs", self._inputs(step, context, inputs))
            return result
        key_inputs = self._inputs(step, context, inputs)

        def compute():
            result = step.run(context)
            arrays, ids = run_to_entry(result.run, context.queries.ids)
            arrays["latency_ms"] = np.asarray(result.latency_ms, dtype=np.float64)
            return arrays, ids, {"costs": result.costs, "spent": result.spent}

        entry = self.cache.get_or_compute("step_runs", key_inputs, compute)
        spent = entry.meta["spent"]
        if entry.hit:  # money, tokens and model calls spent computing the result were spent then, not now
            spent = {name: 0.0 for name in spent}
        costs = {**entry.meta["costs"], f"{step.label}_cache_hit": float(entry.hit)}
        return StepResult(run_from_entry(entry.arrays, entry.payload, context.queries.ids),
                          np.asarray(entry.arrays["latency_ms"]), costs, spent,
                          content_key("step_runs", key_inputs), entry.hit)

    @staticmethod
    def _inputs(step: Step, context: Context, inputs: dict) -> dict:
        return {"step": step.identity, "reads": [context.results[label].key for label in step.reads], **inputs}
