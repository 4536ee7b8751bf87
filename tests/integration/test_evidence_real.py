"""Span gold on real SciFact: its rationale sentences become evidence spans at load time, the span metrics come out
sane, and the test claims written as a questions file (relevant docs + rationale sentence texts) give the same
qrels and the same spans as the BEIR path."""
from __future__ import annotations

import json

import pytest

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.pipeline import run_experiment


@pytest.fixture(scope="module")
def scifact(data_root):
    return load_dataset(data_root / "scifact", split="test", name="scifact")


def rationale_indices(dataset, qid) -> dict[str, list[int]]:
    meta = dataset.queries.metadata[dataset.queries.ids.index(qid)]
    return {doc: sorted({i for r in rationales for i in r["sentences"]}) for doc, rationales in meta.items()}


def test_rationale_sentences_become_evidence_spans(scifact):
    with_rationales = [q for q, meta in zip(scifact.queries.ids, scifact.queries.metadata) if meta]
    assert len(with_rationales) > 150 and set(scifact.evidence) == set(with_rationales)
    texts = dict(zip(scifact.corpus.ids, scifact.corpus.texts))
    indices = spans = 0
    for qid in with_rationales:
        wanted = rationale_indices(scifact, qid)
        indices += sum(len(v) for v in wanted.values())
        for doc, start, end in scifact.evidence[qid]:
            assert doc in wanted and (start, end) in sentence_spans(texts[doc])
            spans += 1
    assert indices - 1 <= spans <= indices  # SciFact has one rationale index beyond its abstract's sentences


@pytest.fixture(scope="module")
def bm25_outcome(data_root, scifact):
    cfg = compose_config(["dataset=scifact", f"dataset.root={data_root}", "tracking.enabled=false",
                          "chunker=fixed_tokens"])
    return run_experiment(cfg, dataset=scifact)


def test_span_metrics_on_scifact(bm25_outcome, scifact):
    m = bm25_outcome.extra_metrics
    assert m["evidence_queries"] == len(scifact.evidence)
    for name in [f"evidence_{kind}_at_{k}" for kind in ("coverage", "iou") for k in (1, 3, 5, 10)] + \
            [f"evidence_coverage_budget_{t}" for t in (256, 512, 1024)]:
        assert 0.0 <= m[name] <= 1.0, name
        per_query = bm25_outcome.extra_per_query[name]
        assert set(per_query) == set(scifact.evidence) and all(0.0 <= v <= 1.0 for v in per_query.values())
    assert m["evidence_coverage_at_1"] < m["evidence_coverage_at_3"] <= m["evidence_coverage_at_10"]
    assert m["evidence_coverage_budget_256"] <= m["evidence_coverage_budget_512"] <= m["evidence_coverage_budget_1024"]
    assert m["evidence_iou_at_10"] < m["evidence_coverage_at_10"]  # ten chunks hold far more than the evidence
    assert 0.5 < m["evidence_coverage_at_10"] < 1.0


def test_scifact_claims_as_a_questions_file_match_the_beir_path(tmp_path, data_root, scifact, bm25_outcome):
    texts = dict(zip(scifact.corpus.ids, scifact.corpus.texts))
    path = tmp_path / "scifact-test-claims.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for qid, claim in zip(scifact.queries.ids, scifact.queries.texts):
            quotes = [texts[doc][start:end] for doc, start, end in scifact.evidence.get(qid, [])]
            row = {"id": qid, "question": claim, "doc": sorted(scifact.qrels[qid])}
            fh.write(json.dumps({**row, "evidence": quotes} if quotes else row) + "\n")
    cfg = compose_config(["dataset=scifact", f"dataset.root={data_root}", f"dataset.questions={path}",
                          "tracking.enabled=false", "chunker=fixed_tokens"])
    questions = load_dataset(cfg.dataset)
    assert questions.qrels == scifact.qrels
    assert questions.queries.ids == scifact.queries.ids and questions.queries.texts == scifact.queries.texts
    located = {q: sorted(spans) for q, spans in questions.evidence.items()}
    assert located == {q: sorted(spans) for q, spans in scifact.evidence.items()}
    # the same gold through the same pipeline: the same span metrics
    outcome = run_experiment(cfg, dataset=questions)
    for name, value in bm25_outcome.extra_metrics.items():
        if name.startswith("evidence_"):
            assert outcome.extra_metrics[name] == pytest.approx(value), name
