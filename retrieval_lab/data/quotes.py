"""Evidence quotes located in the corpus text, and judged evidence spans checked against it.

Each quote is located in the documents' text (not their titles) ignoring case, whitespace, line breaks and
hyphenation: text is folded with Unicode NFKC (ligatures such as "ﬁ" become "fi") and case folding, typographic
quotes become straight ones, whitespace runs become one space, and a hyphen inside a word or at a line end
("exam-\\nple", "well-known") is dropped, on both sides. A quote must be found exactly once where it is looked for:
one that is not found is a problem naming the quote and the closest match; one found in several documents when no
`doc` is given names them (fix: `doc`); one found twice or more in its documents names each place (document, line of
the file, heading path, the words around it), since taking the first silently can point the gold at the wrong
section (fix: a longer quote, with words that only the right place has).

A problem is returned in words (the caller, data/questions.py, reports every problem of a file at once, by line).
"""
from __future__ import annotations

import bisect
import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from retrieval_lab.data.places import source_location
from retrieval_lab.types import Corpus

DOC_BREAK = "\x00"  # between documents in the joined search text; normalized text never holds it
MAX_WINDOWS = 200  # candidate windows compared by difflib when looking for a quote's closest match
AMBIGUOUS = "occurs"  # the start of an ambiguous-quote problem: its fix is a longer quote

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


def exact_span(doc: str, start: int, end: int, quote: str | None, corpus: Corpus,
               row_of: dict[str, int]) -> tuple[str, int, int] | str:
    """A judged evidence span as (doc id, start, end), or the problem in words: the document must hold it, and
    its text there must still read as the recorded quote."""
    known = corpus_id(doc, row_of)
    if known is None:
        return f"evidence doc {doc!r} is not in the corpus"
    text = corpus.texts[row_of[known]]
    if not 0 <= start < end <= len(text):
        return f"evidence span {start}-{end} is outside {known} ({len(text)} characters)"
    if quote is not None and normalize_quote(text[start:end]) != normalize_quote(quote):
        return (f"evidence span {start}-{end} of {known} reads {_short(text[start:end])!r}, not the recorded quote "
                f"{_short(quote)!r}: the document changed since it was judged")
    return known, start, end


def corpus_id(doc: str, row: dict[str, int]) -> str | None:
    """The id `doc` names among `row`'s, as written or as a normalized relative path; None when it is not there."""
    if doc in row:
        return doc
    posix = str(PurePosixPath(doc.replace("\\", "/")))  # "./a//b.md" -> "a/b.md"
    return posix if posix in row else None


def locate_quote(quote: str, docs: list[str], index: CorpusText) -> tuple[str, int, int] | str:
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
