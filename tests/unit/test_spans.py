"""Span metrics on hand-made documents with known answers: gold mapping, coverage, precision/IoU, token budgets."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from retrieval_lab.chunking import build_passages
from retrieval_lab.chunking.tokens import load_tokenizer
from retrieval_lab.evaluate.spans import (BudgetCutter, covered_sentences, merge, overlap, span_gold, span_metrics,
                                          span_scores)
from retrieval_lab.types import Corpus, Queries, Run

SENTS = ["Alpha cells grow.", "Beta cells shrink.", "Gamma rays kill.", "Delta waves sleep."]
DOC = " ".join(SENTS)  # SciFact layout: the abstract's sentences joined by one space
OTHER = "Unrelated text here. Nothing to see."
CORPUS = Corpus(["d1", "d2"], ["Title one", "Title two"], [DOC, OTHER])
SPAN = {i: (DOC.index(s), DOC.index(s) + len(s)) for i, s in enumerate(SENTS)}


@dataclass
class FakeDataset:
    corpus: Corpus
    queries: Queries
    name: str = "hand-made"


def queries(meta):
    return Queries(["q1", "q2"], ["claim one", "claim two"], meta)


def test_gold_maps_sentence_indices_to_character_spans():
    gold = span_gold(queries([{"d1": [{"sentences": [1], "label": "SUPPORT"}, {"sentences": [3, 1]}]},
                              {"d1": [{"sentences": [9]}], "missing": [{"sentences": [0]}]}]), CORPUS)
    assert gold.sentences == {"q1": {"d1": [SPAN[1], SPAN[3]]}}
    assert DOC[slice(*SPAN[1])] == "Beta cells shrink."
    assert gold.out_of_range == 1 and gold.total == 3
    assert span_gold(queries([{}, {}]), CORPUS).sentences == {}


def test_interval_arithmetic():
    assert merge([(5, 8), (0, 3), (2, 4), (8, 9), (7, 7)]) == [(0, 4), (5, 9)]
    assert overlap([(0, 4), (5, 9)], [(3, 6)]) == 2
    gold = {"d1": [(0, 10)]}
    assert covered_sentences(gold, {"d1": [(0, 5)]}) == 1  # half of it: covered
    assert covered_sentences(gold, {"d1": [(0, 4)]}) == 0
    assert covered_sentences(gold, {"d2": [(0, 10)]}) == 0  # the right characters of another document
    precision, recall, iou = span_scores(gold, {"d1": [(5, 15)], "d2": [(0, 10)]})
    assert (precision, recall, iou) == pytest.approx((5 / 20, 5 / 10, 5 / 25))


def passage_run(passages, order):
    return Run({"q1": [(passages.ids[i], 10.0 - r) for r, i in enumerate(order)], "q2": []})


def test_span_metrics_known_answers_for_sentence_chunks():
    passages = build_passages({"name": "sentences", "size": 1}, CORPUS)  # one passage per sentence
    assert [CORPUS.texts[0][s:e] for s, e in zip(passages.starts[:4], passages.ends[:4])] == SENTS
    dataset = FakeDataset(CORPUS, queries([{"d1": [{"sentences": [1, 3]}]}, {}]))
    # ranking: sentence 1 (gold), a d2 sentence, sentence 0, sentence 3 (gold)
    out = span_metrics(passage_run(passages, [1, 4, 0, 3]), passages, dataset, ks=(1, 3, 5), budgets=(4, 10, 100))
    assert out["span_queries"] == 1
    assert out["rationale_recall_at_1"] == 0.5 and out["rationale_recall_at_3"] == 0.5
    assert out["rationale_recall_at_5"] == 1.0
    gold_chars = len(SENTS[1]) + len(SENTS[3])
    assert out["span_precision_at_1"] == 1.0 and out["span_recall_at_1"] == pytest.approx(len(SENTS[1]) / gold_chars)
    got = len(SENTS[1]) + len("Unrelated text here.") + len(SENTS[0])
    assert out["span_precision_at_3"] == pytest.approx(len(SENTS[1]) / got)
    assert out["span_iou_at_5"] == pytest.approx(gold_chars / (got + len(SENTS[3])))
    tok = load_tokenizer("bert")
    first = tok.count(SENTS[1])
    assert first <= 4 < first + tok.count("Unrelated text here.")
    assert out["rationale_recall_budget_4"] == 0.5  # only the first passage fits
    assert out["rationale_recall_budget_100"] == 1.0


def test_budget_cuts_a_large_chunk_on_a_token_boundary():
    passages = build_passages({"name": "none"}, CORPUS)  # whole documents
    cutter = BudgetCutter(passages, dict(zip(CORPUS.ids, CORPUS.texts)))
    within = cutter.within([0, 1], 3)
    (s, e), = within["d1"]
    assert s == 0 and load_tokenizer("bert").count(DOC[s:e]) == 3 and "d2" not in within
    dataset = FakeDataset(CORPUS, queries([{"d1": [{"sentences": [3]}]}, {}]))
    run = passage_run(passages, [0, 1])
    small = span_metrics(run, passages, dataset, ks=(1,), budgets=(5, 1000))
    assert small["rationale_recall_at_1"] == 1.0  # a whole document covers everything at k=1 ...
    assert small["rationale_recall_budget_5"] == 0.0  # ... but not within 5 tokens
    assert small["rationale_recall_budget_1000"] == 1.0


def test_no_span_gold_skips_cleanly():
    passages = build_passages({"name": "none"}, CORPUS)
    dataset = FakeDataset(CORPUS, Queries(["q1"], ["x"], []))
    assert span_metrics(Run({"q1": [("d1", 1.0)]}), passages, dataset) == {}
