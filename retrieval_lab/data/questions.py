"""The questions you have, as evaluation data: `dataset.questions=<file>` (JSONL or CSV; the format and its checks
are data/question_file.py).

Each evidence quote is located in the corpus text (data/quotes.py: folded for case, whitespace, line breaks and
hyphenation; found exactly once where it is looked for) and each judged span is checked against the text. Every
problem of the file is reported at once, one DataError naming the lines, the quotes and their closest matches.

A question with grades but no relevant document (all judged not relevant, or none judged yet) stays a query, so
the set's queries are the ones the pool was built from, but is left out of the qrels: it is not averaged.

The result: doc-level qrels (grade 1 for each document holding evidence or named in `doc`), so every rank metric
works, and span gold (query id -> (doc id, start, end) character spans in the document text), which does not
depend on the chunker.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.data.evidence import Evidence
from retrieval_lab.data.question_file import read_questions
from retrieval_lab.data.quotes import AMBIGUOUS, CorpusText, corpus_id, exact_span, locate_quote
from retrieval_lab.errors import DataError
from retrieval_lab.types import Corpus, Qrels, Queries

SKIPPED_NOTE = "the import skipped that file as unreadable"
MAX_DETAILED = 20  # unresolved quotes reported with their closest match; the rest are counted


@dataclass(frozen=True)
class Questions:
    queries: Queries
    qrels: Qrels
    evidence: Evidence = field(default_factory=dict)


def load_questions(path: str | Path, corpus: Corpus, skipped: dict[str, str] | None = None) -> Questions:
    """Read a questions file and locate its evidence quotes in `corpus` (module docstring). `skipped`: {file:
    reason} of the documents the corpus's import left out as unreadable, so a question citing one says so."""
    path = Path(path)
    rows = read_questions(path)
    index = CorpusText(corpus) if any(r.quotes for r in rows) else None
    row_of = corpus.index_of()
    skipped = {corpus_id(doc, {doc: 0}) or doc: reason for doc, reason in (skipped or {}).items()}
    qrels, evidence, problems, cite_skipped = Qrels(), {}, [], {}
    for r in rows:
        docs = []
        for doc in r.docs:
            known = corpus_id(doc, row_of)
            unread = corpus_id(doc, dict.fromkeys(skipped, 0)) if known is None else None
            if unread is not None:
                cite_skipped[unread] = skipped[unread]
                problems.append((r.line, f"doc {doc!r} is not in the corpus: {SKIPPED_NOTE} "
                                         f"({skipped[unread]})"))
            elif known is None:
                close = difflib.get_close_matches(doc, corpus.ids, n=3)
                problems.append((r.line, f"doc {doc!r} is not in the corpus"
                                 + (f" (closest ids: {', '.join(close)})" if close else "")))
            else:
                docs.append(known)
        if len(docs) < len(r.docs):
            continue
        spans = []
        for quote in r.quotes:
            found = locate_quote(quote, docs, index)
            if isinstance(found, str):
                problems.append((r.line, found))
            else:
                spans.append(found)
        for doc, start, end, quote in r.spans:
            found = exact_span(doc, start, end, quote, corpus, row_of)
            if isinstance(found, str):
                problems.append((r.line, found))
            else:
                spans.append(found)
        graded = {doc: 1 for doc in [*docs, *(s[0] for s in spans)]}
        for doc, grade in (r.grades or {}).items():
            if doc not in row_of:
                problems.append((r.line, f"graded doc {doc!r} is not in the corpus"))
            graded[doc] = max(grade, graded.get(doc, 0))
        if any(grade >= 1 for grade in graded.values()):  # else nothing to average: a query, not judged
            qrels[r.query_id] = graded
        if spans:
            evidence[r.query_id] = spans
    if problems:
        raise _unresolved(path, problems, cite_skipped)
    if not qrels:
        raise DataError(path, "no question has a relevant document (all judged not relevant, or none judged yet)",
                        fix="judge more of the pool (retrieval-lab judge), or give each question a doc or evidence")
    metadata = [{"pool_depth": r.pool_depth} if r.pool_depth else {} for r in rows]
    queries = Queries([r.query_id for r in rows], [r.question for r in rows],
                      metadata if any(metadata) else [])
    return Questions(queries, qrels, evidence)


def _unresolved(path: Path, problems: list[tuple[int, str]], cite_skipped: dict[str, str] | None = None) -> DataError:
    line, first = problems[0]
    lines = [first]
    ambiguous = any(message.startswith("evidence quote ") and f"' {AMBIGUOUS} " in message
                    for _, message in problems)
    for other_line, message in problems[1:MAX_DETAILED]:
        lines.append(f"line {other_line}: {message}")
    if len(problems) > MAX_DETAILED:
        lines.append(f"... and {len(problems) - MAX_DETAILED} more")
    if len(problems) > 1:
        lines.append(f"({len(problems)} problems in all)")
    fixes = []
    if cite_skipped:  # the import reads a repaired file again: its content keys the import
        files = ", ".join(cite_skipped)
        fixes.append(f"repair or replace {files} in the documents folder (save it again as a readable file, e.g. "
                     "a text PDF, not a scan), or remove the questions citing it")
    if any(SKIPPED_NOTE not in message for _, message in problems):
        fixes.append("copy each quote from the document text (case, spacing, line breaks and hyphenation may "
                     "differ); name its document with `doc` when the quote occurs in several")
    if ambiguous:
        fixes.append("lengthen a quote found twice in one document with the words around the right place, so that "
                     "it occurs once")
    return DataError(path, "\n  ".join(lines), line, "; ".join(fixes))
