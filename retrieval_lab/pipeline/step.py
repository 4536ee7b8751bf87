"""One step interface: every step of the chain (first stages, fusion, rerank, documents, units, diversify, ...) is a
`Step` with an `identity`, declared `facts` and `run(context) -> StepResult`.

- `identity`: a JSON-able dict, the step's cache key: every setting that changes its output, its model's weights
  hash and the step's `stage_version` (bump it when the code changes what the same settings produce).
- `facts`: what later steps (and the checks after the chain) may rely on, declared, never probed: the model's
  tokenizer, its maximum tokens, whether it is case-sensitive. `Facts()` declares none.
- `reads`: the labels of the earlier results the step reads (empty for a first stage, which reads the queries and
  the passages only); with the step's identity they make its cache key, so a changed setting of step k replays
  every earlier step from the cache and recomputes step k and those reading it.
- `cached`: whether the chain stores the step's result (`Cache.get_or_compute`, cache stage `step_runs`); cheap
  steps (documents, units) are recomputed instead.
- `run(context)` reads `context.queries`, `context.passages`, `context.depth` and earlier results
  (`context.input()`, `context.inputs()`, `context.results`) and returns a `StepResult`: the run, the per-query
  latency of the first `LATENCY_SAMPLE` queries (in ms), its `costs` (seconds, sizes, speeds) and what computing it
  `spent` (money, tokens, requests, model calls), named as the trace and the logged metrics show them (a step
  prefixes them with its label: `bm25_index_seconds`, `rerank_pairs`). On a cache hit the chain replays the stored
  latency and costs, and reports every `spent` figure as 0: it was spent then, not now.

The chain (`pipeline.chain.Chain`) runs the steps in order, caches and times them and records each result in the
`Trace` under the step's label; `pipeline.build.build_chain` is the only place steps are made. The algorithm lives in
its stage package as pure functions over plain data (stages never import the pipeline: layers); the step, a thin
adapter, lives in `pipeline/steps/<name>.py`. Writing and registering a new step, e.g. MMR after rerank:

    # retrieval_lab/diversify/__init__.py: MMRConfig (typed, validated, errors name the key) and mmr(...)
    # retrieval_lab/pipeline/steps/diversify.py: the step
    class MMRStep(Step):
        label = DIVERSIFY = "diversify"  # its run's name in the trace (and a reserved hybrid input label)
        stage_version = 1

        def __init__(self, config: MMRConfig, reads: tuple[str, ...]):
            self.config, self.reads = config, reads  # reads: (the label of the run it diversifies,)

        @property
        def identity(self) -> dict:
            return {"name": "mmr", "stage_version": self.stage_version, **asdict(self.config)}

        def run(self, context: Context) -> StepResult:
            before = context.input().run  # the run before it
            tokenizer = context.fact("tokenizer")  # a fact an earlier step declared (None: none did)
            run, latency = per_query(context.queries.ids, lambda qid: mmr(before[qid], ...))
            return StepResult(run, latency, {"diversify_seconds": ...})

    # retrieval_lab/pipeline/build.py: one entry in the builder's table STEPS (chain order = table order)
    STEPS = {FUSION: ..., RERANK: ...,
             DIVERSIFY: StepEntry(read=lambda cfg, specs: mmr_config(cfg.get("diversify") or {}),
                                  make=lambda config, built: MMRStep(config, (built.last,)) if config.active
                                  else None),
             DOCUMENTS: ..., UNITS: ...}
    # read(composed config, first-stage specs) -> the typed config (into `PipelineConfig.steps[label]`);
    # make(typed config, built) -> the step, or None where the config switches it off; `built.last` is the label of
    # the latest passage-level run, `built.facts()` the facts of the steps made so far

plus its config group (`conf/diversify/*.yaml`) and tests. Nothing else changes: the chain caches it (key: its
identity and the keys of the results it reads), times it and records it in the `Trace`.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar

import numpy as np

from retrieval_lab.chunking import Passages
from retrieval_lab.types import Corpus, Facts, Queries, Run

FACT_NAMES = tuple(f.name for f in fields(Facts))
LATENCY_SAMPLE = 50  # queries searched one at a time and timed (p50/p95 latency)


@dataclass
class StepResult:
    """What a step produced for a query set."""

    run: Run  # query id -> [(id, score)] best first: passage ids, document ids or unit ids
    latency_ms: np.ndarray  # ms per query of the latency sample (the first `LATENCY_SAMPLE` queries)
    costs: dict[str, float] = field(default_factory=dict)  # seconds, speeds, sizes, pairs: replayed on a cache hit
    spent: dict[str, float] = field(default_factory=dict)  # money, tokens, requests, pairs computed: 0 on a hit
    key: str = ""  # the content key of this result (step identity + read results' keys + queries, passages,
    # depth): what later steps' keys are made of; set by the chain
    hit: bool = False  # replayed from the cache


@dataclass
class Context:
    """What a step runs on: the queries, the corpus and its passages, the depth (documents wanted per query), the
    earlier steps' results and facts (by label, in chain order), and the labels the running step reads."""

    queries: Queries
    corpus: Corpus
    passages: Passages
    depth: int
    results: dict[str, StepResult] = field(default_factory=dict)
    facts: Mapping[str, Facts] = field(default_factory=dict)  # read lazily: a fact may read a tokenizer's files
    reads: tuple[str, ...] = ()  # the running step's `reads`

    def inputs(self) -> list[StepResult]:
        """The results the running step reads, in the order of its `reads`."""
        return [self.results[label] for label in self.reads]

    def input(self) -> StepResult:
        """The one result the running step reads (its `reads` names exactly one)."""
        if len(self.reads) != 1:
            raise ValueError(f"the step reads {len(self.reads)} results ({', '.join(self.reads)}), not one")
        return self.results[self.reads[0]]

    def fact(self, name: str, default: Any = None) -> Any:
        """A fact the latest earlier step declaring it gave (`tokenizer`, `max_tokens`, ...), else `default`."""
        if name not in FACT_NAMES:
            raise ValueError(f"unknown fact {name!r}: the facts a step declares are {', '.join(FACT_NAMES)}")
        for label in reversed(list(self.facts)):  # the latest first; each step's facts read only when reached
            value = getattr(self.facts[label], name)
            if value is not None:
                return value
        return default


class Step:
    """Base of every step: subclass it, set `label`, give `identity` (an attribute or a property) and `run`; a step
    with facts sets `facts`, a step reading earlier results sets `reads`, a cheap one `cached = False`."""

    label: str = ""  # its run's name in the trace, metrics and costs
    stage_version: ClassVar[int] = 1  # part of `identity`: bump when the same settings give another output
    identity: dict  # its cache key: settings, model weights hash, `stage_version` (JSON-able)
    reads: tuple[str, ...] = ()
    cached: bool = True
    facts: Facts = Facts()

    def run(self, context: Context) -> StepResult:
        raise NotImplementedError


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def per_query(query_ids: list[str], one: Callable[[str], list[tuple[str, float]]]) -> tuple[Run, list[float]]:
    """`one(query id)` for each query, the first `LATENCY_SAMPLE` timed: a step that works query by query."""
    out, latency = Run(), []
    for row, qid in enumerate(query_ids):
        t0 = time.perf_counter()
        out[qid] = one(qid)
        if row < LATENCY_SAMPLE:
            latency.append(ms_since(t0))
    return out, latency


# ------------------------------------------------------------------------------------------- a run as a cache entry

def run_to_entry(run: Run, query_ids: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """A run as arrays (`rows` into the id list, -1 padded; `scores` float64, so a replay equals the computed run
    exactly) and the id list (JSON payload), each query's hits in their order."""
    ids: dict[str, int] = {}
    width = max((len(run.get(qid, [])) for qid in query_ids), default=0)
    rows = np.full((len(query_ids), width), -1, dtype=np.int64)
    scores = np.zeros((len(query_ids), width), dtype=np.float64)
    for r, qid in enumerate(query_ids):
        for c, (hit, score) in enumerate(run.get(qid, [])):
            rows[r, c] = ids.setdefault(hit, len(ids))
            scores[r, c] = score
    return {"rows": rows, "scores": scores}, list(ids)


def run_from_entry(arrays: dict[str, np.ndarray], ids: list[str], query_ids: list[str]) -> Run:
    rows, scores = np.asarray(arrays["rows"]), np.asarray(arrays["scores"])
    return Run({qid: [(ids[j], float(s)) for j, s in zip(rows[r].tolist(), scores[r].tolist()) if j >= 0]
                for r, qid in enumerate(query_ids)})
