"""Questions files (`dataset.questions=<file>`, JSONL or CSV) read into checked rows; every problem is a DataError
naming the file and line.

JSONL, one question per line:

    {"question": "How do I resize a volume?", "evidence": ["lvresize grows or shrinks"], "doc": "guide/lvm.md"}

- `question` (required): the query text.
- `evidence`: quotes copied from the documents (a string or a list); may be left out when `doc` is given, for
  document-level gold only.
- `doc`: the relevant document id(s) (a string or a list; for an imported folder, the file's path relative to the
  folder). It narrows where the quotes are looked for.
- `id` (optional): the query id; else `q<line number>`. Other fields are ignored.

A judged set (written by `retrieval-lab judge`, judging/) adds, per question:
- `grades`: {doc id: grade} of every judged document, 0 = judged not relevant (JSONL only);
- `evidence` items as objects {"doc", "start", "end", "quote"}: exact character spans of the document text, the quote
  checked against the text there (a changed document is an error naming the line);
- `pool_depth`: how deep the judged pool went (kept as query metadata: runs log `judged_at_10` and `pool_depth`).

CSV: a header row with `question` and any of `evidence`, `doc`, `id`; several quotes or documents in one cell are
separated by ` || `.

How the rows become evaluation data (quotes located, qrels and span gold) is data/questions.py.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.data.jsonl import json_objects
from retrieval_lab.errors import DataError

SEPARATOR = "||"  # between quotes (or documents) in one CSV cell, written " || "
FIELDS = ("question", "evidence", "doc", "id")


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
