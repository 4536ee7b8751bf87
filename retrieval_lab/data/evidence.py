"""Span gold: where in the document text the answer to a query is, as (doc id, start, end) character spans.

Span gold does not depend on how documents are chunked, so one set of it scores every chunker and every returned
unit (evaluate/spans.py). Two sources produce it:
- a questions file with evidence quotes, located in the corpus text (data/questions.py, data/quotes.py);
- SciFact-style rationales in BEIR query metadata, `{doc_id: [{"sentences": [i, ...], ...}]}`: indices into the
  abstract's sentence list, turned into character spans here with `chunking.sentences.sentence_spans` (SciFact's
  BEIR text is the sentences joined by one space; checked in tests/integration/test_chunking_real.py).
"""
from __future__ import annotations

import logging

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.types import Corpus, Queries, _digest

log = logging.getLogger(__name__)

EvidenceSpan = tuple[str, int, int]  # doc id, start, end: corpus text[start:end] is evidence
Evidence = dict[str, list[EvidenceSpan]]  # query id -> its evidence spans (queries without span gold absent)


def evidence_fingerprint(evidence: Evidence) -> str:
    return _digest(f"{q}\t{d}\t{s}\t{e}" for q in sorted(evidence) for d, s, e in sorted(evidence[q]))


def rationale_evidence(queries: Queries, corpus: Corpus, source: str = "queries.jsonl") -> Evidence:
    """Evidence spans from rationale sentence indices in the queries' metadata; {} when no query has any.

    A sentence index beyond the sentences recovered from a document is skipped with a warning (SciFact has one in
    1,391); a document missing from the corpus is skipped silently, as its qrels are warned about already."""
    row = corpus.index_of()
    sentences: dict[str, list[tuple[int, int]]] = {}
    evidence: Evidence = {}
    skipped = total = 0
    for qid, meta in zip(queries.ids, queries.metadata or [{}] * len(queries)):
        if not isinstance(meta, dict):
            continue
        for doc, rationales in meta.items():
            if doc not in row or not isinstance(rationales, list):
                continue
            indices = sorted({i for r in rationales if isinstance(r, dict)
                              for i in r.get("sentences", []) if isinstance(i, int) and i >= 0})
            if not indices:
                continue
            if doc not in sentences:
                sentences[doc] = sentence_spans(corpus.texts[row[doc]])
            spans = sentences[doc]
            total += len(indices)
            skipped += sum(i >= len(spans) for i in indices)
            evidence.setdefault(qid, []).extend((doc, *spans[i]) for i in indices if i < len(spans))
    if skipped:
        log.warning("%s: %d of %d rationale sentence indices are beyond the sentences recovered from their "
                    "document; they are left out of the span gold", source, skipped, total)
    return {q: spans for q, spans in evidence.items() if spans}
