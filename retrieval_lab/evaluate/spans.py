"""Span metrics: how much of the gold evidence the returned text holds, for any dataset with span gold.

Span gold is `Dataset.evidence`, (doc id, start, end) character spans in the document text, from a questions file's
evidence quotes or SciFact's rationale sentences (data/evidence.py). The returned units of each query are
(doc id, start, end) spans in rank order: passages today, or whatever larger unit a pipeline returns. Titles are
not part of any span. Per query with span gold:

- `evidence_coverage_at_<k>` (k in 1, 3, 5, 10): the share of gold evidence characters inside the top-k units
  (units and gold merged per document, so overlapping units count once). The main span metric: it does not
  penalise a unit for holding more than the evidence (context-grid scores the same way);
- `evidence_coverage_budget_<t>` (t in 256, 512, 1024): the same over the first t tokens of returned text in rank
  order (bert tokenizer; the unit that crosses the budget counts up to it), what a RAG context window of t tokens
  receives, so large units cannot win by size alone. A unit that repeats text already returned still uses budget;
- `evidence_iou_at_<k>`: characters in both the top-k units and the gold over characters in either; secondary, as
  it penalises large units for being large.

Means are over the queries with span gold (`evidence_queries` of them); a dataset without span gold has none.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval_lab.chunking.tokens import load_tokenizer

log = logging.getLogger(__name__)

SPAN_K = (1, 3, 5, 10)
BUDGETS = (256, 512, 1024)

Unit = tuple[str, int, int]  # doc id, start, end in the document text
Spans = list[tuple[int, int]]


def merge(spans: Spans) -> Spans:
    out: Spans = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def length(spans: Spans) -> int:
    return sum(e - s for s, e in spans)


def overlap(a: Spans, b: Spans) -> int:
    """Characters in both merged span lists."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def by_document(units: Sequence[Unit]) -> dict[str, Spans]:
    """Merged spans per document."""
    out: dict[str, Spans] = {}
    for doc, start, end in units:
        out.setdefault(doc, []).append((start, end))
    return {doc: merge(spans) for doc, spans in out.items()}


def coverage_and_iou(gold: dict[str, Spans], returned: dict[str, Spans]) -> tuple[float, float]:
    """(share of gold characters returned, IoU) over characters; both span maps merged per document."""
    inter = sum(overlap(spans, returned.get(doc, [])) for doc, spans in gold.items())
    want = sum(length(spans) for spans in gold.values())
    got = sum(length(spans) for spans in returned.values())
    union = want + got - inter
    return (inter / want if want else 0.0, inter / union if union else 0.0)


class TokenBudget:
    """Cuts ranked units at a token budget; each unit's text is tokenized once (bert tokenizer, as the chunkers'
    default token counts)."""

    def __init__(self, texts: Mapping[str, str], tokens=None):
        self.texts = texts
        self.tokens = tokens or load_tokenizer("bert")
        self._ends: dict[Unit, list[int]] = {}

    def token_ends(self, unit: Unit) -> list[int]:
        """Where each token of the unit's text ends, as a document offset."""
        if unit not in self._ends:
            doc, start, end = unit
            self._ends[unit] = [start + b for _, b in self.tokens.spans(self.texts[doc][start:end])]
        return self._ends[unit]

    def cut(self, units: Sequence[Unit], budget: int) -> list[Unit]:
        """The ranked units that fit in `budget` tokens, the last one cut on a token boundary."""
        out: list[Unit] = []
        left = budget
        for unit in units:
            if left <= 0:
                break
            ends = self.token_ends(unit)
            if not ends:  # whitespace only: no tokens, no evidence
                continue
            doc, start, end = unit
            out.append(unit if len(ends) <= left else (doc, start, ends[left - 1]))
            left -= len(ends)
        return out


@dataclass
class SpanEvaluation:
    query_ids: list[str]  # the queries with span gold
    per_query: dict[str, np.ndarray]  # metric name -> value per query, aligned with query_ids

    @property
    def means(self) -> dict[str, float]:
        """Mean of each metric and the number of queries they are over; {} without span gold."""
        if not self.query_ids:
            return {}
        return {**{name: float(v.mean()) for name, v in self.per_query.items()},
                "evidence_queries": float(len(self.query_ids))}

    def by_query(self) -> dict[str, dict[str, float]]:
        """metric name -> {query id: value}, for the per-query artifact."""
        return {name: dict(zip(self.query_ids, map(float, v))) for name, v in self.per_query.items()}


def span_metrics(units: Mapping[str, Sequence[Unit]], dataset, ks=SPAN_K, budgets=BUDGETS,
                 tokens=None) -> SpanEvaluation:
    """Span metrics per query of `dataset` with span gold, over its returned `units` (query id -> ranked units; a
    query without any returned nothing)."""
    evidence = getattr(dataset, "evidence", None) or {}
    query_ids = [q for q in dataset.queries.ids if evidence.get(q)]
    if not query_ids:
        log.info("dataset %s has no span gold: span metrics skipped", getattr(dataset, "name", "?"))
        return SpanEvaluation([], {})
    budget = TokenBudget(dict(zip(dataset.corpus.ids, dataset.corpus.texts)), tokens)
    names = ([f"evidence_coverage_at_{k}" for k in ks] + [f"evidence_iou_at_{k}" for k in ks]
             + [f"evidence_coverage_budget_{t}" for t in budgets])
    values = {name: np.zeros(len(query_ids)) for name in names}
    for row, qid in enumerate(query_ids):
        gold = by_document(evidence[qid])
        ranked = list(units.get(qid, []))
        for k in ks:
            coverage, iou = coverage_and_iou(gold, by_document(ranked[:k]))
            values[f"evidence_coverage_at_{k}"][row] = coverage
            values[f"evidence_iou_at_{k}"][row] = iou
        for t in budgets:
            values[f"evidence_coverage_budget_{t}"][row] = coverage_and_iou(gold, by_document(budget.cut(ranked, t)))[0]
    return SpanEvaluation(query_ids, values)
