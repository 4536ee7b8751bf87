"""What one pass of the chain produced: each stage's run, its per-query latency and its costs.

Evaluating a query set and searching one query return the same `Trace`; the evaluation reads its intermediate runs
(span metrics, the reranker's recall ceiling) and its latency (end to end, every stage counted).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retrieval_lab.types import Run

DOCUMENTS = "documents"  # passages -> documents, each once (what document-level metrics score)
UNITS = "units"  # passages -> returned units (what a RAG system reads; what span metrics score)
FUSION = "fusion"
RERANK = "rerank"


@dataclass
class Trace:
    query_ids: list[str]
    runs: dict[str, Run] = field(default_factory=dict)  # stage label -> its output, in chain order
    latency_ms: dict[str, np.ndarray] = field(default_factory=dict)  # stage label -> ms per query of the sample
    costs: dict[str, float] = field(default_factory=dict)  # index seconds, cache hits, rerank pairs, ...

    def record(self, label: str, run: Run, latency_ms, costs: dict[str, float] | None = None) -> None:
        if label in self.runs:
            raise ValueError(f"two stages are labelled '{label}'")  # a hybrid input named like a later stage
        self.runs[label] = run
        self.latency_ms[label] = np.asarray(latency_ms, dtype=np.float64)
        self.costs.update(costs or {})

    @property
    def documents(self) -> Run:
        """The final ranking: each document once, best first."""
        return self.runs[DOCUMENTS]

    @property
    def units(self) -> Run:
        """The returned units, best first: ids `doc@start-end` (`chunking.units.parse_unit_id`)."""
        return self.runs[UNITS]

    @property
    def passages(self) -> Run:
        """The last passage-level ranking (what span metrics read): the run the documents were aggregated from."""
        return self._before(DOCUMENTS)

    @property
    def candidates(self) -> Run:
        """The (fused) first-stage ranking handed to the reranker, or to aggregation when nothing reranks."""
        return self._before(RERANK) if RERANK in self.runs else self.passages

    def _before(self, label: str) -> Run:
        labels = list(self.runs)
        return self.runs[labels[labels.index(label) - 1]]

    def end_to_end_ms(self) -> np.ndarray:
        """Per query of the latency sample: the sum over every stage (first stages, fusion, rerank, aggregation)."""
        return np.sum([ms for ms in self.latency_ms.values()], axis=0)

    def latency_metrics(self) -> dict[str, float]:
        total = self.end_to_end_ms()
        out = {"query_p50_ms": float(np.percentile(total, 50)), "query_p95_ms": float(np.percentile(total, 95)),
               "queries_per_second": 1000.0 / max(float(total.mean()), 1e-9)}
        out.update({f"{label}_p50_ms": float(np.percentile(ms, 50)) for label, ms in self.latency_ms.items()})
        return out
