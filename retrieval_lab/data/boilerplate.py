"""Boilerplate: lines repeated across most documents of an imported folder (page footers such as "Part of the
git(1) suite" and "Last updated ...", copyright and licence notices, navigation rows) are cut from the text.

A line's key is its text with whitespace collapsed and digit runs as "0", so a footer that carries each page's own
date still repeats. A line is boilerplate when its key is in at least `SHARE` of the folder's documents (and in at
least `MIN_DOCS` of them: in a small folder shared lines are as likely content) and has `MIN_WORDS` words with
letters ("}" or "(1)" closing many code blocks and footnotes is not boilerplate). The threshold was measured on
three real manuals (the share of documents holding each line; `benchmarks/` has no timing here, the figures are in
the import docs of README): every content line was in at most 44% of a folder's pages (PostgreSQL's 1,169 pages:
"Description", 44%; git's 160 command pages: "EXAMPLES", 41%; the R manuals' 7: a shared example line in 4, 57%),
every footer in 85% or more ("Part of the git(1) suite" 98%, "Prev | Up | Next" 96%, the R copyright 86-100%).
0.6 sits in that gap.

A heading is kept even when repeated (NAME, SYNOPSIS on every man page are the sections' names) unless every other
line of its section is cut too: then the whole section is boilerplate (git's "GIT" section, holding only the suite
footer). Cutting shifts the source map, sections and anchors, so every kept character maps to the same place of
the file as before.
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

SHARE = 0.6
MIN_DOCS = 5
MIN_WORDS = 2
EXAMPLES = 10  # repeated lines listed in the import report and manifest
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]")
_LINE = re.compile(r"[^\n]+")


@dataclass
class BoilerplateReport:
    documents: int = 0  # documents in the folder
    threshold: int = 0  # documents a line must be in to be cut
    lines: int = 0  # lines cut, over all documents
    chars: int = 0  # characters cut (with the line breaks around them)
    total_chars: int = 0  # characters before cutting
    changed: int = 0  # documents with something cut
    repeated: list[tuple[str, int]] = field(default_factory=list)  # (line, documents holding it), most first

    def summary(self) -> dict:
        return {"share": SHARE, "min_docs": MIN_DOCS, "documents": self.documents, "total_chars": self.total_chars,
                "threshold_docs": self.threshold, "lines": self.lines,
                "chars": self.chars, "share_of_text": round(self.chars / self.total_chars, 6) if self.total_chars
                else 0.0, "documents_changed": self.changed,
                "repeated": [{"line": line, "documents": n} for line, n in self.repeated]}

    @classmethod
    def from_summary(cls, summary: dict) -> "BoilerplateReport":
        """The report as an import's manifest recorded it (what a reused import says again)."""
        return cls(documents=summary.get("documents", 0), threshold=summary.get("threshold_docs", 0),
                   lines=summary.get("lines", 0), chars=summary.get("chars", 0),
                   total_chars=summary.get("total_chars", 0), changed=summary.get("documents_changed", 0),
                   repeated=[(r["line"], r["documents"]) for r in summary.get("repeated", [])])

    def line(self) -> str:
        if not self.repeated:
            return (f"boilerplate: no line repeats in {self.threshold} or more of the {self.documents} documents "
                    f"(share {SHARE:.0%}, at least {MIN_DOCS}): nothing dropped")
        shown = "; ".join(f"{line[:60]!r} ({n} docs)" for line, n in self.repeated[:3])
        return (f"boilerplate: dropped {self.lines} lines ({self.chars:,} characters, "
                f"{self.chars / max(self.total_chars, 1):.1%} of the text) repeated in {self.threshold} or more of "
                f"the {self.documents} documents, cut from {self.changed} of them, e.g. {shown}")


def line_key(line: str) -> str:
    return _DIGITS.sub("0", " ".join(line.split()))


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end, key) of each non-blank line, its surrounding spaces left out of the span."""
    out = []
    for m in _LINE.finditer(text):
        raw = m.group()
        stripped = raw.strip()
        if stripped:
            start = m.start() + len(raw) - len(raw.lstrip())
            out.append((start, start + len(stripped), line_key(stripped)))
    return out


def _counts(key: str) -> bool:
    return sum(1 for word in key.split() if _WORD.search(word)) >= MIN_WORDS


def drop_boilerplate(records: list[dict]) -> BoilerplateReport:
    """Cut repeated lines from imported records (`text`, `metadata.source.map`, `metadata.sections`,
    `metadata.anchors`) in place; each record's metadata gets `boilerplate` {lines, chars} when something is cut."""
    n = len(records)
    report = BoilerplateReport(documents=n, threshold=max(MIN_DOCS, math.ceil(SHARE * n - 1e-9)))
    lines_of = [_lines(r["text"]) for r in records]
    frequency: dict[str, int] = {}
    for lines in lines_of:
        for key in {key for _, _, key in lines}:
            frequency[key] = frequency.get(key, 0) + 1
    repeated = {key for key, f in frequency.items() if f >= report.threshold}
    report.total_chars = sum(len(r["text"]) for r in records)
    shown: dict[str, str] = {}  # key -> the line as first seen
    for record, lines in zip(records, lines_of):
        sections = record["metadata"].get("sections") or []
        cut = _boilerplate_lines(lines, sections, repeated)
        if not cut:
            continue
        for start, end, key in cut:
            shown.setdefault(key, record["text"][start:end])
        before = len(record["text"])
        cut_spans(record, [(s, e) for s, e, _ in cut])
        dropped = before - len(record["text"])
        record["metadata"]["boilerplate"] = {"lines": len(cut), "chars": dropped}
        report.lines += len(cut)
        report.chars += dropped
        report.changed += 1
    report.repeated = sorted(((line, frequency[key]) for key, line in shown.items()),
                             key=lambda kv: (-kv[1], kv[0]))[:EXAMPLES]
    return report


def _boilerplate_lines(lines, sections, repeated) -> list[tuple[int, int, str]]:
    """The lines to cut: repeated ones of `MIN_WORDS` words, headings (any length) only with their whole section."""
    heading_ends = {int(s[0]): int(s[1]) for s in sections if len(s) > 2 and s[2]}
    cut = []
    for i, (start, end, key) in enumerate(lines):
        if key not in repeated:
            continue
        if start in heading_ends:
            body = [line for line in lines[i + 1:] if line[0] < heading_ends[start]]
            if not body or not all(k in repeated and _counts(k) and s not in heading_ends for s, _, k in body):
                continue
        elif not _counts(key):
            continue
        cut.append((start, end, key))
    return cut


def cut_spans(record: dict, spans: list[tuple[int, int]]) -> None:
    """Remove `spans` of the record's text (each with the whitespace after it, or before it at the end of the text)
    and shift its source map, sections and anchors so kept offsets map to the same source places."""
    text = record["text"]
    ranges: list[list[int]] = []
    for start, end in sorted(spans):
        while end < len(text) and text[end].isspace():
            end += 1
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    if ranges and ranges[-1][1] == len(text):  # at the end: the break before it goes too
        while ranges[-1][0] > 0 and text[ranges[-1][0] - 1].isspace():
            ranges[-1][0] -= 1
        if len(ranges) > 1 and ranges[-1][0] <= ranges[-2][1]:
            ranges[-2][1] = ranges.pop()[1]
    cut_starts = [s for s, _ in ranges]
    removed_before = [0]
    for s, e in ranges:
        removed_before.append(removed_before[-1] + e - s)

    def shift(offset: int) -> int:
        i = bisect.bisect_right(cut_starts, offset) - 1
        if i < 0:
            return offset
        s, e = ranges[i]
        return s - removed_before[i] if offset < e else offset - removed_before[i + 1]

    def inside(offset: int) -> bool:
        i = bisect.bisect_right(cut_starts, offset) - 1
        return i >= 0 and offset < ranges[i][1]

    kept, position = [], 0
    for s, e in ranges:
        kept.append((position, s))
        position = e
    kept.append((position, len(text)))
    source = record["metadata"]["source"]
    old_map = source.get("map") or []
    at_offsets = [a[0] for a in old_map]
    new_map: list[list] = []
    for a, b in kept:
        if a >= b:
            continue
        row = bisect.bisect_right(at_offsets, a) - 1
        pieces = [[a, old_map[row][1], old_map[row][2] + a - old_map[row][0]]] if row >= 0 else []
        pieces += old_map[row + 1:bisect.bisect_left(at_offsets, b)]
        for at, page, origin in pieces:
            moved = shift(at)
            if new_map and new_map[-1][1] == page and new_map[-1][2] + moved - new_map[-1][0] == origin:
                continue  # the previous anchor already maps it
            new_map.append([moved, page, origin])
    source["map"] = new_map
    record["text"] = "".join(text[a:b] for a, b in kept)
    sections = []
    for section in record["metadata"].get("sections") or []:
        start, end = shift(int(section[0])), shift(int(section[1])) if int(section[1]) < len(text) else len(
            record["text"])
        if end > start and record["text"][start:end].strip():
            sections.append([start, end, *section[2:]])
    record["metadata"]["sections"] = sections
    record["metadata"]["anchors"] = [[shift(int(o)), ident] for o, ident in record["metadata"].get("anchors") or []
                                     if not inside(int(o))]  # the target of a cut element is gone with it
