"""Span metrics on hand-made documents with known answers: coverage and IoU at k, token budgets, per-query values
and their per_query.csv columns."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import pytest

from retrieval_lab.chunking import build_passages
from retrieval_lab.chunking.units import UnitConfig, unit_spans, unit_spans_of
from retrieval_lab.tracking import per_query_values
from retrieval_lab.config import compose_config
from retrieval_lab.evaluate import Evaluation
from retrieval_lab.evaluate.spans import (TokenBudget, by_document, coverage_and_iou, merge, overlap,
                                          span_metrics)
from retrieval_lab.pipeline.steps import UnitsStep
from retrieval_lab.pipeline.experiment import Outcome
from retrieval_lab.tracking import write_artifacts
from retrieval_lab.types import Corpus, Queries, Run

SENTS = ["Alpha cells grow.", "Beta cells shrink.", "Gamma rays kill.", "Delta waves sleep."]
DOC = " ".join(SENTS)  # 17 + 1 + 18 + 1 + 16 + 1 + 18 = 72 characters
OTHER = "Unrelated text here. Nothing to see."
CORPUS = Corpus(["d1", "d2"], ["Title one", "Title two"], [DOC, OTHER])
S = [(DOC.index(s), DOC.index(s) + len(s)) for s in SENTS]  # (0, 17), (18, 36), (37, 53), (54, 72)


def unit(i):
    return ("d1", *S[i])


@dataclass
class FakeDataset:
    corpus: Corpus
    queries: Queries
    evidence: dict = field(default_factory=dict)
    name: str = "hand-made"


def dataset(evidence):
    return FakeDataset(CORPUS, Queries(["q1", "q2", "q3"], ["claim one", "claim two", "claim three"]), evidence)


def test_interval_arithmetic():
    assert S == [(0, 17), (18, 36), (37, 53), (54, 72)]
    assert merge([(5, 8), (0, 3), (2, 4), (8, 9), (7, 7)]) == [(0, 4), (5, 9)]
    assert overlap([(0, 4), (5, 9)], [(3, 6)]) == 2
    assert by_document([("d1", 5, 8), ("d2", 0, 3), ("d1", 0, 6)]) == {"d1": [(0, 8)], "d2": [(0, 3)]}
    gold = {"d1": [(0, 10)]}
    # 5 of the 10 gold characters; the same characters of another document do not count
    assert coverage_and_iou(gold, {"d1": [(5, 15)], "d2": [(0, 10)]}) == pytest.approx((5 / 10, 5 / 25))
    assert coverage_and_iou(gold, {}) == (0.0, 0.0)


def test_coverage_and_iou_at_k_known_answers():
    # gold: sentences 1 (18 chars) and 3 (18 chars) of d1; ranking: sentence 1, all of d2, sentence 0, sentence 3
    data = dataset({"q1": [unit(1), unit(3)]})
    units = {"q1": [unit(1), ("d2", 0, len(OTHER)), unit(0), unit(3)]}
    out = span_metrics(units, data, ks=(1, 3, 5), budgets=())
    assert out.query_ids == ["q1"]
    m = out.means
    assert m["evidence_queries"] == 1
    assert m["evidence_coverage_at_1"] == pytest.approx(18 / 36)
    assert m["evidence_coverage_at_3"] == pytest.approx(18 / 36)
    assert m["evidence_coverage_at_5"] == 1.0
    assert m["evidence_iou_at_1"] == pytest.approx(18 / 36)  # all it returns is gold: union = the gold
    # top 3 returns 18 + 36 + 17 characters, 18 of them gold: union 71 + 18 (the unreturned gold sentence)
    assert m["evidence_iou_at_3"] == pytest.approx(18 / 89)
    assert m["evidence_iou_at_5"] == pytest.approx(36 / (36 + 36 + 17))


def test_overlapping_units_count_once():
    data = dataset({"q1": [unit(1)], "q2": [unit(1), unit(1)]})  # a duplicated gold span counts once too
    overlapping = [(unit(1)), ("d1", S[1][0], S[2][1]), unit(1)]  # sentence 1 returned three times
    out = span_metrics({"q1": overlapping, "q2": overlapping}, data, ks=(3,), budgets=())
    assert out.per_query["evidence_coverage_at_3"].tolist() == [1.0, 1.0]
    assert out.per_query["evidence_iou_at_3"] == pytest.approx([18 / 35, 18 / 35])  # union: sentences 1-2


def test_budget_counts_tokens_in_rank_order_and_cuts_the_last_unit():
    whole = ("d1", 0, len(DOC))  # 16 bert tokens: 3 words and a full stop per sentence
    data = dataset({"q1": [unit(0)], "q2": [unit(3)]})
    out = span_metrics({"q1": [whole], "q2": [whole]}, data, ks=(1,), budgets=(2, 4, 15, 16))
    per = out.per_query
    assert per["evidence_coverage_at_1"].tolist() == [1.0, 1.0]  # a whole document holds everything at k=1 ...
    # ... but 2 tokens of it are "Alpha cells": 11 of sentence 0's 17 characters
    assert per["evidence_coverage_budget_2"].tolist() == pytest.approx([11 / 17, 0.0])
    assert per["evidence_coverage_budget_4"].tolist() == [1.0, 0.0]
    assert per["evidence_coverage_budget_15"].tolist() == pytest.approx([1.0, 17 / 18])  # the last "." cut off
    assert per["evidence_coverage_budget_16"].tolist() == [1.0, 1.0]
    budget = TokenBudget({"d1": DOC, "d2": OTHER})
    assert budget.cut([unit(0), unit(1)], 6) == [unit(0), ("d1", S[1][0], S[1][0] + len("Beta cells"))]


def test_budget_spends_tokens_on_repeated_and_irrelevant_units():
    data = dataset({"q1": [unit(2)]})
    out = span_metrics({"q1": [unit(0), unit(0), unit(2)]}, data, ks=(), budgets=(8, 12))
    assert out.means["evidence_coverage_budget_8"] == 0.0  # sentence 0 twice uses the 8 tokens
    assert out.means["evidence_coverage_budget_12"] == 1.0


def test_means_are_over_queries_with_span_gold_only():
    data = dataset({"q1": [unit(1)], "q3": [unit(0)]})  # q2 has no span gold; q3 returned nothing
    out = span_metrics({"q1": [unit(1)], "q2": [unit(0)]}, data, ks=(1,), budgets=(512,))
    assert out.query_ids == ["q1", "q3"]
    assert out.means["evidence_coverage_at_1"] == 0.5 and out.means["evidence_queries"] == 2
    assert out.by_query()["evidence_coverage_at_1"] == {"q1": 1.0, "q3": 0.0}
    empty = span_metrics({"q1": [unit(1)]}, dataset({}))
    assert empty.means == {} and empty.by_query() == {}


def test_passage_runs_become_units():
    passages = build_passages({"name": "sentences", "size": 1}, CORPUS)  # one passage per sentence
    order = [1, 4, 0]
    run = Run({"q1": [(passages.ids[i], 10.0 - r) for r, i in enumerate(order)], "q2": []})
    step = UnitsStep(UnitConfig("chunk"), passages, *unit_spans(passages, CORPUS, UnitConfig("chunk")),
                     ("passages", "documents"))
    units = unit_spans_of(step.of(run, Run(), passages, 10))
    assert units == {"q1": [unit(1), ("d2", 0, len("Unrelated text here.")), unit(0)], "q2": []}


def test_per_query_csv_has_span_columns_that_best_reads(tmp_path):
    data = dataset({"q1": [unit(1)]})
    spans = span_metrics({"q1": [unit(1)], "q2": [unit(0)]}, data, ks=(1,), budgets=())
    evaluation = Evaluation(["q1", "q2"], {"ndcg_at_10": np.array([1.0, 0.5])})
    outcome = Outcome(data, Run({"q1": [("d1", 1.0)], "q2": [("d1", 1.0)]}), evaluation, {}, spans.means, None,
                      spans.by_query())
    write_artifacts(tmp_path, compose_config(["tracking.enabled=false"]), outcome)
    with open(tmp_path / "per_query.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["evidence_coverage_at_1"] == "1.000000" and rows[1]["evidence_coverage_at_1"] == ""

    class Client:  # the MLflow client `best` uses, serving the artifact just written
        def download_artifacts(self, run_id, path, dst):
            return str(tmp_path / path)

    assert per_query_values(Client(), "r", "evidence_coverage_at_1") == {"q1": 1.0}
    assert per_query_values(Client(), "r", "ndcg_at_10") == {"q1": 1.0, "q2": 0.5}
