"""The questions you have, as evaluation data: `dataset.questions=<file>` (JSONL or CSV).

JSONL, one question per line:

    {"question": "How do I resize a volume?", "evidence": ["lvresize grows or shrinks"], "doc": "guide/lvm.md"}

- `question` (required): the query text.
- `evidence`: quotes copied from the documents (a string or a list); may be left out when `doc` is given, for
  document-level gold only.
- `doc`: the relevant document id(s) (a string or a list; for an imported folder, the file's path relative to the
  folder). It narrows where the quotes are looked for.
- `id` (optional): the query id; else `q<line number>`. Other fields are ignored.

A judged set (written by `retrieval-lab judge`, data/judging/) adds, per question:
- `grades`: {doc id: grade} of every judged document, 0 = judged not relevant (JSONL only);
- `evidence` items as objects {"doc", "start", "end", "quote"}: exact character spans of the document text, the quote
  checked against the text there (a changed document is an error naming the line);
- `pool_depth`: how deep the judged pool went (kept as query metadata: runs log `judged_at_10` and `pool_depth`).
A question with grades but no relevant document (all judged not relevant, or none judged yet) stays a query, so
the set's queries are the ones the pool was built from, but is left out of the qrels: it is not averaged.

CSV: a header row with `question` and any of `evidence`, `doc`, `id`; several quotes or documents in one cell are
separated by ` || `.

Each quote is located in the documents' text (not their titles) ignoring case, whitespace, line breaks and
hyphenation: text is folded with Unicode NFKC (ligatures such as "ﬁ" become "fi") and case folding, typographic
quotes become straight ones, whitespace runs become one space, and a hyphen inside a word or at a line end
("exam-\\nple", "well-known") is dropped, on both sides. A quote must be found exactly once where it is looked for:
one that is not found is a DataError naming the line, the quote and the closest match; one found in several
documents when no `doc` is given names them (fix: `doc`); one found twice or more in its documents names each
place (document, line of the file, heading path, the words around it), since taking the first silently can point
the gold at the wrong section (fix: a longer quote, with words that only the right place has).

The result: doc-level qrels (grade 1 for each document holding evidence or named in `doc`), so every rank metric
works, and span gold (query id -> (doc id, start, end) character spans in the document text), which does not
depend on the chunker.
"""
from __future__ import annotations

import bisect
import csv
import difflib
import functools
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from retrieval_lab.data.evidence import Evidence
from retrieval_lab.data.folder import source_location
from retrieval_lab.data.jsonl import json_objects
from retrieval_lab.errors import DataError
from retrieval_lab.types import Corpus, Qrels, Queries

SEPARATOR = "||"  # between quotes (or documents) in one CSV cell, written " || "
FIELDS = ("question", "evidence", "doc", "id")
DOC_BREAK = "\x00"  # between documents in the joined search text; normalized text never holds it
SKIPPED_NOTE = "the import skipped that file as unreadable"
MAX_DETAILED = 20  # unresolved quotes reported with their closest match; the rest are counted
MAX_WINDOWS = 200  # candidate windows compared by difflib when looking for a quote's closest match

_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"',
                              "\u201d": '"', "\u201e": '"', "\u2010": "-", "\u2011": "-", "\u00ad": ""})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SPACES = np.array([0x85, 0x2028, 0x2029, 0x3000], dtype=np.uint32)  # not folded to ' ' by NFKC
_HYPHEN = ord("-")


@dataclass(frozen=True)
class NormalizedText:
    text: str
    offsets: np.ndarray  # offsets[i]: position in the original text of normalized character i

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original text span of normalized text[start:end] (end > start)."""
        return int(self.offsets[start]), int(self.offsets[end - 1]) + 1


@functools.lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char).casefold().translate(_TYPOGRAPHIC)


def _fold(text: str) -> tuple[str, np.ndarray | None]:
    """Case- and compatibility-folded text, and the original position of each of its characters (None when the
    folding kept one character per character, as for ASCII)."""
    if text.isascii():
        return text.lower(), None
    pieces: list[str] = []
    source: list[np.ndarray] = []
    last = 0
    for m in _NON_ASCII.finditer(text):
        pieces.append(text[last:m.start()].lower())
        source.append(np.arange(last, m.start()))
        for i, char in enumerate(m.group(), start=m.start()):
            folded = _fold_char(char)
            pieces.append(folded)
            source.append(np.full(len(folded), i))
        last = m.end()
    pieces.append(text[last:].lower())
    source.append(np.arange(last, len(text)))
    return "".join(pieces), np.concatenate(source)


def normalize(text: str) -> NormalizedText:
    """Text as quotes are matched: folded, hyphenation dropped, whitespace runs as one space (module docstring)."""
    folded, source = _fold(text)
    codes = np.frombuffer(folded.encode("utf-32-le"), dtype="<u4")
    n = len(codes)
    space = (codes <= 32) | np.isin(codes, _SPACES)  # control characters count as whitespace
    keep = np.ones(n, dtype=bool)
    for i in np.flatnonzero(codes == _HYPHEN):  # few per document: a plain loop
        if i == 0 or not folded[i - 1].isalnum():
            continue
        j = i + 1
        while j < n and space[j]:
            j += 1
        gap = folded[i + 1:j]
        if j < n and folded[j].isalnum() and (not gap or "\n" in gap or "\r" in gap):
            keep[i:j] = False  # inside a word, or split at a line end
    rows = np.flatnonzero(keep)
    is_space = space[rows]
    repeat = is_space & np.concatenate(([False], is_space[:-1]))
    rows = rows[~repeat]
    out = np.where(space[rows], 32, codes[rows]).astype("<u4")
    offsets = rows if source is None else source[rows]
    return NormalizedText(out.tobytes().decode("utf-32-le"), offsets.astype(np.int64))


def normalize_quote(quote: str) -> str:
    """A quote as it is searched for; a hyphen at either end is dropped, as it is inside the document's words."""
    return normalize(quote).text.strip().strip("-").strip()


@dataclass
class QuestionRow:
    line: int
    query_id: str
    question: str
    quotes: list[str]
    docs: list[str]
    spans: list[tuple[str, int, int, str | None]] = field(default_factory=list)  # (doc, start, end, quote)
    grades: dict[str, int] | None = None  # a judged set's grades, 0 included
    pool_depth: int | None = None


@dataclass(frozen=True)
class Questions:
    queries: Queries
    qrels: Qrels
    evidence: Evidence = field(default_factory=dict)


@dataclass
class Match:
    doc: str
    start: int  # in the original document text
    end: int
    similarity: float


class CorpusText:
    """The corpus normalized once, for exact quote search; offset maps are rebuilt only for documents that match."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.row = corpus.index_of()
        texts = [normalize(t).text for t in corpus.texts]
        self.texts = texts
        self.starts = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]]).tolist()
        self.joined = DOC_BREAK.join(texts)
        self._maps: dict[int, NormalizedText] = {}

    def mapping(self, row: int) -> NormalizedText:
        if row not in self._maps:
            self._maps[row] = normalize(self.corpus.texts[row])
        return self._maps[row]

    def span(self, row: int, start: int, length: int) -> tuple[str, int, int]:
        """(doc id, start, end) in the original text of `length` normalized characters from `start`."""
        return (self.corpus.ids[row], *self.mapping(row).original_span(start, start + length))

    def find_every(self, quote: str, rows: list[int], limit: int = 5) -> list[tuple[int, int]]:
        """(row, normalized position) of each place the quote is in `rows` (overlapping places too), up to
        `limit`."""
        hits: list[tuple[int, int]] = []
        for row in rows:
            pos = self.texts[row].find(quote)
            while pos >= 0 and len(hits) < limit:
                hits.append((row, pos))
                pos = self.texts[row].find(quote, pos + 1)
        return hits

    def find_all(self, quote: str, limit: int = 5) -> list[tuple[int, int]]:
        """(row, normalized position) of the quote's first place in each document holding it, up to `limit`."""
        hits: list[tuple[int, int]] = []
        pos = self.joined.find(quote)
        while pos >= 0 and len(hits) < limit:
            row = bisect.bisect_right(self.starts, pos) - 1
            hits.append((row, pos - self.starts[row]))
            next_doc = self.starts[row + 1] if row + 1 < len(self.starts) else len(self.joined)
            pos = self.joined.find(quote, next_doc)
        return hits

    def closest(self, quote: str, rows: list[int] | None) -> Match | None:
        """The most similar passage to an unfound quote, in `rows` (None: the whole corpus), by difflib over a
        bounded set of candidate windows: those aligned on the quote's longest words where they occur, else (with
        named documents) windows sliding over them."""
        length = len(quote)
        searched = [(r, self.texts[r]) for r in rows] if rows is not None else None
        candidates: set[tuple[int, int]] = set()  # (row, window start in normalized document text)
        anchors = sorted({w for w in re.findall(r"\w{4,}", quote)}, key=len, reverse=True)[:6]
        per_anchor = max(1, MAX_WINDOWS // max(1, len(anchors)))
        for word in anchors:
            offset = quote.find(word)
            for row, pos in self._occurrences(word, searched, per_anchor):
                candidates.add((row, max(0, pos - offset)))
        if not candidates and searched is not None:
            step = max(1, length // 2)
            for row, text in searched:
                candidates.update((row, s) for s in range(0, max(1, len(text) - length // 2), step))
        best: tuple[float, int, int, int] | None = None
        for row, start in sorted(candidates)[:MAX_WINDOWS]:
            text = self.texts[row]
            lo, hi = max(0, start - length // 4), min(len(text), start + length + length // 4)
            matcher = difflib.SequenceMatcher(None, quote, text[lo:hi], autojunk=False)
            blocks = [b for b in matcher.get_matching_blocks() if b.size]
            if not blocks:
                continue
            a, b = lo + blocks[0].b, lo + blocks[-1].b + blocks[-1].size
            similarity = 2 * sum(x.size for x in blocks) / (length + (b - a))
            if best is None or similarity > best[0]:
                best = (similarity, row, a, b)
        if best is None:
            return None
        similarity, row, a, b = best
        doc, start, end = self.span(row, a, b - a)
        return Match(doc, start, end, similarity)

    def _occurrences(self, word: str, searched, limit: int):
        if searched is None:
            pos = self.joined.find(word)
            while pos >= 0 and limit > 0:
                row = bisect.bisect_right(self.starts, pos) - 1
                yield row, pos - self.starts[row]
                limit -= 1
                pos = self.joined.find(word, pos + 1)
            return
        for row, text in searched:
            pos = text.find(word)
            while pos >= 0 and limit > 0:
                yield row, pos
                limit -= 1
                pos = text.find(word, pos + 1)


def load_questions(path: str | Path, corpus: Corpus, skipped: dict[str, str] | None = None) -> Questions:
    """Read a questions file and locate its evidence quotes in `corpus` (module docstring). `skipped`: {file:
    reason} of the documents the corpus's import left out as unreadable, so a question citing one says so."""
    path = Path(path)
    rows = read_questions(path)
    index = CorpusText(corpus) if any(r.quotes for r in rows) else None
    row_of = corpus.index_of()
    skipped = {_corpus_id(doc, {doc: 0}) or doc: reason for doc, reason in (skipped or {}).items()}
    qrels, evidence, problems, cite_skipped = Qrels(), {}, [], {}
    for r in rows:
        docs = []
        for doc in r.docs:
            known = _corpus_id(doc, row_of)
            unread = _corpus_id(doc, dict.fromkeys(skipped, 0)) if known is None else None
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
            found = _locate(quote, docs, index)
            if isinstance(found, str):
                problems.append((r.line, found))
            else:
                spans.append(found)
        for doc, start, end, quote in r.spans:
            found = _exact_span(doc, start, end, quote, corpus, row_of)
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


def _exact_span(doc: str, start: int, end: int, quote: str | None, corpus: Corpus,
                row_of: dict[str, int]) -> tuple[str, int, int] | str:
    """A judged evidence span as (doc id, start, end), or the problem in words: the document must hold it, and
    its text there must still read as the recorded quote."""
    known = _corpus_id(doc, row_of)
    if known is None:
        return f"evidence doc {doc!r} is not in the corpus"
    text = corpus.texts[row_of[known]]
    if not 0 <= start < end <= len(text):
        return f"evidence span {start}-{end} is outside {known} ({len(text)} characters)"
    if quote is not None and normalize_quote(text[start:end]) != normalize_quote(quote):
        return (f"evidence span {start}-{end} of {known} reads {_short(text[start:end])!r}, not the recorded quote "
                f"{_short(quote)!r}: the document changed since it was judged")
    return known, start, end


def _corpus_id(doc: str, row: dict[str, int]) -> str | None:
    if doc in row:
        return doc
    posix = str(PurePosixPath(doc.replace("\\", "/")))  # "./a//b.md" -> "a/b.md"
    return posix if posix in row else None


def _locate(quote: str, docs: list[str], index: CorpusText) -> tuple[str, int, int] | str:
    """The quote's (doc id, start, end), or the problem in words."""
    wanted = normalize_quote(quote)
    if not wanted:
        return f"evidence quote {quote!r} is empty"
    rows = list(dict.fromkeys(index.row[d] for d in docs)) if docs else None
    if rows is not None:
        hits = index.find_every(wanted, rows)
        if len(hits) == 1:
            return index.span(hits[0][0], hits[0][1], len(wanted))
        if hits:
            return _ambiguous(quote, wanted, hits, index)
        where = f"in {_names(docs)}"
    else:
        hits = index.find_all(wanted)
        if len(hits) == 1:
            hits = index.find_every(wanted, [hits[0][0]])
            if len(hits) == 1:
                return index.span(hits[0][0], hits[0][1], len(wanted))
            return _ambiguous(quote, wanted, hits, index)
        if hits:
            ids = [index.corpus.ids[r] for r, _ in hits]
            more = "or more " if len(hits) == 5 else ""
            return (f"evidence quote {_short(quote)!r} is in {len(hits)} {more}documents ({', '.join(ids)}): "
                    "add the right one as `doc`")
        where = "in any document"
    return f"evidence quote {_short(quote)!r} is not found {where}" + _closest_words(index, wanted, rows)


AMBIGUOUS = "occurs"  # the start of an ambiguous-quote problem: its fix is a longer quote


def _ambiguous(quote: str, wanted: str, hits: list[tuple[int, int]], index: CorpusText) -> str:
    """The problem of a quote found at several places: each place with its document, file line, heading path and
    the words around it, so the user can lengthen the quote from the right one."""
    places = []
    for row, pos in hits:
        doc, start, end = index.span(row, pos, len(wanted))
        text = index.corpus.texts[row]
        metadata = index.corpus.metadata[row] if index.corpus.metadata else {}
        where = doc
        if metadata and metadata.get("source"):
            location = source_location(metadata, start)
            where += (f" page {location['page']}" if location["page"] is not None
                      else f" line {location['line']}" if location["line"] else f" offset {location['offset']}")
            if location["heading_path"]:
                where += f" ({' > '.join(location['heading_path'])})"
        else:
            where += f" offset {start}"
        around = f"{text[max(0, start - 40):start]}[{text[start:end]}]{text[end:end + 40]}"
        places.append(f"{where}: '...{' '.join(around.split())}...'")
    return (f"evidence quote {_short(quote)!r} {AMBIGUOUS} {len(hits)}{' or more' if len(hits) == 5 else ''} times, "
            f"so its place is ambiguous: " + "; ".join(places)
            + " (lengthen the quote with words from around the right place so it occurs once)")


def _closest_words(index: CorpusText, wanted: str, rows: list[int] | None) -> str:
    match = index.closest(wanted, rows)
    if match is None:
        return "; no similar text found"
    text = " ".join(index.corpus.texts[index.row[match.doc]][match.start:match.end].split())
    return f"; closest match ({match.similarity:.0%} similar) in {match.doc}: {_short(text)!r}"


def _names(docs: list[str]) -> str:
    return ", ".join(docs) if len(docs) <= 3 else f"{', '.join(docs[:3])} and {len(docs) - 3} more"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


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


def read_questions(path: Path, require_gold: bool = True) -> list[QuestionRow]:
    """The rows of a JSONL or CSV questions file, checked: each has a question and (with `require_gold`, as for
    evaluation) evidence, a doc or grades; ids unique. Questions to be judged need no gold."""
    if not path.is_file():
        raise DataError(path, "questions file not found",
                        fix="set dataset.questions to a .jsonl or .csv file (relative to where you run)")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv"):
        raise DataError(path, f"unknown questions format {suffix or '(no extension)'!r}",
                        fix="use a .jsonl file (one JSON object per line) or a .csv file with a header row")
    text = _decode(path)
    records = _csv_records(path, text) if suffix == ".csv" else _jsonl_records(path, text)
    rows, seen = [], {}
    for line, record in records:
        row = _question_row(path, line, record, require_gold)
        if row.query_id in seen:
            raise DataError(path, f"duplicate id {row.query_id!r} (first on line {seen[row.query_id]})", line,
                            "ids must be unique")
        seen[row.query_id] = line
        rows.append(row)
    if not rows:
        raise DataError(path, "the questions file has no questions")
    return rows


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as spreadsheet exports write, is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(path, f"invalid UTF-8 at byte {exc.start}", line, "re-encode the file as UTF-8") from None


def _jsonl_records(path: Path, text: str):
    return json_objects(path, enumerate(text.splitlines(), start=1), "each line must be one JSON object: "
                        '{"question": ..., "evidence": [...], "doc": ...}')


def _csv_records(path: Path, text: str):
    reader = csv.reader(io.StringIO(text, newline=""))
    header = None
    previous = 0  # physical lines read so far: a record starts on the next one
    for cells in reader:
        line, previous = previous + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            if "question" not in header:
                raise DataError(path, f"the header has no 'question' column (found: {', '.join(header)})", line,
                                "the first row names the columns: question, evidence, doc (and optionally id)")
            continue
        if len(cells) > len(header):
            raise DataError(path, f"{len(cells)} cells for {len(header)} columns", line,
                            "quote cells that contain commas (\"...\")")
        record = {}
        for name, cell in zip(header, cells):
            if name in FIELDS and cell.strip():
                record[name] = [p.strip() for p in cell.split(SEPARATOR)] if name in ("evidence", "doc") \
                    else cell.strip()
        yield line, record


def _question_row(path: Path, line: int, record: dict, require_gold: bool = True) -> QuestionRow:
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(path, "missing or empty 'question'", line, "every row needs the question text")
    spans = _span_objects(path, line, record)
    quotes = _strings(path, line, {**record, "evidence": [e for e in _listed(record.get("evidence"))
                                                          if not isinstance(e, dict)]}, "evidence")
    docs = _strings(path, line, record, "doc")
    grades = _grades(path, line, record.get("grades"))
    pool_depth = record.get("pool_depth")
    if pool_depth is not None and (not isinstance(pool_depth, int) or isinstance(pool_depth, bool)
                                   or pool_depth < 1):
        raise DataError(path, f"'pool_depth' must be a positive integer, got {pool_depth!r}", line)
    if require_gold and not quotes and not spans and not docs and grades is None:
        raise DataError(path, "a question needs evidence quotes, a doc, or both", line,
                        "add 'evidence' (quotes from the documents) or 'doc' (the relevant document's id/path)")
    query_id = record.get("id")
    if query_id is None or str(query_id).strip() == "":
        query_id = f"q{line}"
    elif not isinstance(query_id, (str, int)):
        raise DataError(path, f"'id' must be a string, got {type(query_id).__name__}", line)
    return QuestionRow(line, str(query_id).strip(), question.strip(), quotes, docs, spans, grades, pool_depth)


def _listed(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _span_objects(path: Path, line: int, record: dict) -> list[tuple[str, int, int, str | None]]:
    """Evidence given as exact spans, {"doc", "start", "end", "quote"} (quote optional), as a judged set writes it."""
    out = []
    for item in _listed(record.get("evidence")):
        if not isinstance(item, dict):
            continue
        doc, start, end, quote = item.get("doc"), item.get("start"), item.get("end"), item.get("quote")
        if not isinstance(doc, str) or not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) \
                or not (quote is None or isinstance(quote, str)):
            raise DataError(path, f"evidence span {json.dumps(item)[:120]} needs 'doc' (a string), 'start' and 'end' "
                            "(integers) and optionally 'quote' (a string)", line)
        out.append((doc, start, end, quote))
    return out


def _grades(path: Path, line: int, value) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0
                                              for g in value.values()):
        raise DataError(path, "'grades' must map document ids to whole numbers >= 0 (0 = judged not relevant)",
                        line)
    return {str(doc): grade for doc, grade in value.items()}


def _strings(path: Path, line: int, record: dict, key: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DataError(path, f"'{key}' must be a string or a list of strings", line)
    return [v.strip() for v in values if v.strip()]
