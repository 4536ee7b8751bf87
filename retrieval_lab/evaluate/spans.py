"""Span-level evaluation from sentence gold (SciFact rationales): which retrieved text is the evidence.

SciFact's `queries.jsonl` metadata maps each relevant document to its rationales, `{doc_id: [{"sentences": [i,
...], "label": ...}]}`: indices into the abstract's sentence list. The BEIR text is those sentences joined by one
space, so `chunking.sentences.sentence_spans` recovers their character spans (checked against the rationales in
tests/integration/test_chunking_real.py). Over a passage-level run (before aggregation to documents):

- `rationale_recall_at_k`: share of gold sentences covered by the top-k passages (a sentence counts as covered
  when at least half of its characters lie inside retrieved spans of its document);
- `span_precision_at_k`, `span_recall_at_k`, `span_iou_at_k`: character-level precision, recall and IoU of the
  union of the top-k passage spans against the union of gold sentence spans (as chroma-core's chunking
  evaluation, over characters of the document text; titles are not part of any span);
- `rationale_recall_budget_<n>`: rationale recall of the top-ranked passage text cut at n tokens (bert tokenizer;
  a passage that does not fit is cut on a token boundary), so large chunks cannot win by size alone.

Means are over the queries with gold spans; datasets without span gold yield no span metrics.
"""
from __future__ import annotations

import logging

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.chunking.tokens import load_tokenizer
from dataclasses import dataclass

log = logging.getLogger(__name__)

SPAN_K = (1, 3, 5, 10)
BUDGETS = (256, 512, 1024)
COVERED = 0.5  # share of a sentence's characters that must be retrieved for it to count

Spans = list[tuple[int, int]]


@dataclass
class SpanGold:
    sentences: dict[str, dict[str, Spans]]  # query id -> doc id -> gold sentence spans
    out_of_range: int  # gold sentence indices beyond the recovered sentence count (skipped)
    total: int


def span_gold(queries, corpus) -> SpanGold:
    """Gold sentence spans per query and document from SciFact-style query metadata; empty when there is none."""
    row = corpus.index_of()
    cache: dict[str, Spans] = {}
    gold: dict[str, dict[str, Spans]] = {}
    bad = total = 0
    for qid, meta in zip(queries.ids, queries.metadata or [{}] * len(queries)):
        if not isinstance(meta, dict):
            continue
        for doc, rationales in meta.items():
            if doc not in row or not isinstance(rationales, list):
                continue
            indices = sorted({i for r in rationales if isinstance(r, dict)
                              for i in r.get("sentences", []) if isinstance(i, int)})
            if not indices:
                continue
            if doc not in cache:
                cache[doc] = sentence_spans(corpus.texts[row[doc]])
            sents = cache[doc]
            total += len(indices)
            bad += sum(i >= len(sents) for i in indices)
            spans = [sents[i] for i in indices if i < len(sents)]
            if spans:
                gold.setdefault(qid, {})[doc] = spans
    return SpanGold(gold, bad, total)


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


def covered_sentences(gold: dict[str, Spans], retrieved: dict[str, Spans]) -> int:
    n = 0
    for doc, sents in gold.items():
        got = merge(retrieved.get(doc, []))
        for s, e in sents:
            n += overlap([(s, e)], got) >= COVERED * (e - s)
    return n


def span_scores(gold: dict[str, Spans], retrieved: dict[str, Spans]) -> tuple[float, float, float]:
    """(precision, recall, IoU) over characters of the retrieved spans against the gold spans."""
    inter = got = want = 0
    for doc in set(gold) | set(retrieved):
        g, r = merge(gold.get(doc, [])), merge(retrieved.get(doc, []))
        inter += overlap(g, r)
        got += length(r)
        want += length(g)
    union = got + want - inter
    return (inter / got if got else 0.0, inter / want if want else 0.0, inter / union if union else 0.0)


class BudgetCutter:
    """Token spans of passage span texts (bert tokenizer), computed once per passage row."""

    def __init__(self, passages, corpus_texts: dict[str, str]):
        self.tokens = load_tokenizer("bert")
        self.passages, self.texts = passages, corpus_texts
        self._spans: dict[int, list[tuple[int, int]]] = {}

    def token_spans(self, row: int) -> list[tuple[int, int]]:
        if row not in self._spans:
            s, e = int(self.passages.starts[row]), int(self.passages.ends[row])
            text = self.texts[self.passages.doc_ids[row]][s:e]
            self._spans[row] = [(s + a, s + b) for a, b in self.tokens.spans(text)]
        return self._spans[row]

    def within(self, rows: list[int], budget: int) -> dict[str, Spans]:
        """Document spans of the ranked passages' text, cut after `budget` tokens."""
        out: dict[str, Spans] = {}
        left = budget
        for row in rows:
            if left <= 0:
                break
            toks = self.token_spans(row)
            if not toks:
                continue
            doc = self.passages.doc_ids[row]
            if len(toks) <= left:
                out.setdefault(doc, []).append((int(self.passages.starts[row]), int(self.passages.ends[row])))
            else:
                out.setdefault(doc, []).append((int(self.passages.starts[row]), toks[left - 1][1]))
            left -= len(toks)
        return out


def span_metrics(passage_run, passages, dataset, ks=SPAN_K, budgets=BUDGETS) -> dict[str, float]:
    """Mean span metrics over the queries of `dataset` with gold spans; {} when the dataset has none."""
    gold = span_gold(dataset.queries, dataset.corpus)
    if not gold.sentences:
        log.info("dataset %s has no span gold: span metrics skipped", getattr(dataset, "name", "?"))
        return {}
    if gold.out_of_range:
        log.warning("%d of %d gold sentence indices are beyond the sentences recovered from the text; skipped",
                    gold.out_of_range, gold.total)
    rows = passages.row_of()
    texts = dict(zip(dataset.corpus.ids, dataset.corpus.texts))
    cutter = BudgetCutter(passages, texts)
    sums: dict[str, float] = {}
    queries = [q for q in gold.sentences if q in passage_run]
    for qid in queries:
        g = gold.sentences[qid]
        n_gold = sum(len(v) for v in g.values())
        ranked = [rows[pid] for pid, _ in passage_run[qid]]
        for k in ks:
            retrieved: dict[str, Spans] = {}
            for row in ranked[:k]:
                retrieved.setdefault(passages.doc_ids[row], []).append(
                    (int(passages.starts[row]), int(passages.ends[row])))
            precision, recall, iou = span_scores(g, retrieved)
            for name, value in (("rationale_recall", covered_sentences(g, retrieved) / n_gold),
                                ("span_precision", precision), ("span_recall", recall), ("span_iou", iou)):
                sums[f"{name}_at_{k}"] = sums.get(f"{name}_at_{k}", 0.0) + value
        for budget in budgets:
            within = cutter.within(ranked, budget)
            key = f"rationale_recall_budget_{budget}"
            sums[key] = sums.get(key, 0.0) + covered_sentences(g, within) / n_gold
    out = {name: value / len(queries) for name, value in sums.items()} if queries else {}
    out["span_queries"] = float(len(queries))
    out["span_gold_out_of_range"] = float(gold.out_of_range)
    return out
