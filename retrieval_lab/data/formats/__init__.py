"""Document formats: one reader per file suffix, each turning a file's bytes into imported text with a title, a
source map and heading-delimited sections.

The source map is a list of anchors `[text_offset, page, source_offset]`, sorted by text offset: the imported text
from `text_offset` on comes from `source_offset` onward, character for character, until the next anchor. `page` is
the 1-based PDF page (then `source_offset` counts characters of that page's extracted text) or None for unpaged
formats (then it counts characters of the decoded file). Line endings are normalized: a CRLF pair or a lone CR
becomes one LF in the imported text (the map skips the CR).

Sections are `[start, end, heading, path, anchor]` spans of the imported text, from one heading (of any level) to
the next; they cover the whole text once a document has a heading. `path` is the list of headings from the
outermost to this one (h1 > h2 > h3), `anchor` the id a link can point at (HTML: the nearest element id at or
before the heading; Markdown: the heading's slug; None where there is none). A section longer than
SECTION_MAX_CHARS is cut at paragraph breaks (else line breaks, else spaces) into parts that keep its heading, path
and anchor. Anchors (`[text_offset, id]`, sorted) are every link target of the document: `anchor_at` finds the
nearest one before an offset.
"""
from __future__ import annotations

import bisect
import codecs
import functools
import importlib
import re
from dataclasses import dataclass, field
from typing import Callable

# The encoding tried when a text file is not UTF-8: the usual one of non-UTF-8 Western text files. It leaves five
# byte values undefined, so most other encodings (Shift-JIS punctuation, binary data) still fail to decode, and such
# a file is skipped rather than imported as mojibake.
FALLBACK_ENCODING = "cp1252"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_SEPARATOR_RANK = {"": 0, " ": 1, "\n": 2, "\n\n": 3}
_CARRIAGE_RETURN = re.compile(r"\r\n?")
# A section longer than this is cut into parts: returned as a unit (unit=section), a 223,676-character section of
# a manual is a whole document. 4,000 characters are about 1,000 BERT tokens: twice the 512-token budget of the
# evidence metrics, so a part still holds a paragraph or two around what a chunk matched.
SECTION_MAX_CHARS = 4000


class UnreadableFile(Exception):
    """A file of a supported format that yields no text; `reason` says why, for the import report."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Extracted:
    """What a reader makes of one file."""

    text: str
    title: str | None  # None: the importer falls back to the file name
    source_map: list[list]
    sections: list[list]
    details: dict = field(default_factory=dict)  # format-specific source facts (encoding, pages)
    note: str | None = None  # something the user should know although the file was imported
    anchors: list[list] = field(default_factory=list)  # [text offset, id] of every link target, sorted


class TextBuilder:
    """Imported text assembled piece by piece: separators are owed, not written, so a document never starts or ends
    with one and block breaks never stack; every piece with a known origin extends the source map."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._owed = ""
        self.source_map: list[list] = []
        self.headings: list[tuple[int, str, int]] = []  # (text offset, heading, level: 1 for h1)
        self.anchors: list[list] = []  # [text offset, id]
        self.resumed: list[tuple[int, str, int, str | None]] = []  # (offset, heading, level, anchor): see resume

    def __len__(self) -> int:
        return self._length

    def separate(self, separator: str = "\n\n") -> None:
        """Owe a separator before the next piece: the strongest one owed wins (space < line < paragraph)."""
        if self._length and _SEPARATOR_RANK[separator] > _SEPARATOR_RANK[self._owed]:
            self._owed = separator

    def add(self, text: str, source_offset: int | None = None, page: int | None = None) -> int:
        """Append `text` (after any owed separator); returns the offset where it starts. CRLF and lone CR become LF
        (a CRLF's LF is anchored at its own place in the source, so the map stays exact)."""
        if not text:
            return self._length
        if self._owed:
            self._append(self._owed)
            self._owed = ""
        start = self._length
        if "\r" in text:
            self._add_lines(text, source_offset, page)
            return start
        if source_offset is not None:
            self._anchor(start, page, source_offset)
        self._append(text)
        return start

    def _add_lines(self, text: str, source_offset: int | None, page: int | None) -> None:
        last = 0
        for match in _CARRIAGE_RETURN.finditer(text):
            for piece, at in ((text[last:match.start()], last), ("\n", match.end() - 1)):
                if piece:
                    if source_offset is not None:
                        self._anchor(self._length, page, source_offset + at)
                    self._append(piece)
            last = match.end()
        if last < len(text):
            if source_offset is not None:
                self._anchor(self._length, page, source_offset + last)
            self._append(text[last:])

    def start_heading(self) -> int:
        """Offset where the next piece will start (after the owed separator, if any text precedes it)."""
        return self._length + (len(self._owed) if self._length else 0)

    def add_heading(self, start: int, heading: str, level: int = 1) -> None:
        if heading and start < self._length:
            self.headings.append((start, heading, level))

    def resume(self, heading: str, level: int, anchor: str | None) -> None:
        """From the next piece on, the text belongs to `heading` again (the section a note or sidebar with a heading
        of its own interrupted); kept as a section only when text follows before the next heading."""
        self.resumed.append((self.start_heading(), heading, level, anchor))

    def add_anchor(self, anchor: str) -> None:
        """A link target (an element id) where the next piece will start."""
        if anchor:
            self.anchors.append([self.start_heading(), anchor])

    def checkpoint(self) -> tuple[int, int, int, int, int, str]:
        return (len(self._parts), len(self.source_map), len(self.headings), len(self.anchors), len(self.resumed),
                self._owed)

    def rollback(self, mark: tuple[int, int, int, int, int, str]) -> None:
        """Forget everything added since `checkpoint()` (e.g. a list found to be navigation once it closed)."""
        parts, anchors, headings, targets, resumed, owed = mark
        del self._parts[parts:]
        del self.source_map[anchors:]
        del self.headings[headings:]
        del self.anchors[targets:]
        del self.resumed[resumed:]
        self._length = sum(len(p) for p in self._parts)
        self._owed = owed if self._length else ""

    def text_since(self, start: int) -> str:
        """The text from `start` to the end, without joining everything before it."""
        pieces, length = [], self._length
        for part in reversed(self._parts):
            if length <= start:
                break
            pieces.append(part)
            length -= len(part)
        return "".join(reversed(pieces))[start - length:]

    def ends_with_space(self) -> bool:
        return bool(self._owed) or not self._parts or self._parts[-1][-1:].isspace()

    def text(self) -> str:
        return "".join(self._parts)

    def sections(self, anchors: dict[int, str] | None = None) -> list[list]:
        """`[start, end, heading, path, anchor]` from each heading to the next (module docstring), long ones cut
        into parts; text before the first heading is a section with an empty heading and path. `anchors` gives a
        heading's anchor by its start (Markdown slugs); else the nearest element id at or before the heading."""
        if not self.headings:
            return []
        text = self.text()
        # (start, heading, level, resumed, anchor); at one offset a resumed heading comes before a new one
        starts = sorted([(s, h, lv, False, None) for s, h, lv in self.headings]
                        + [(s, h, lv, True, a) for s, h, lv, a in self.resumed], key=lambda h: (h[0], not h[3]))
        spans = []
        if starts[0][0] > 0 and text[:starts[0][0]].strip():
            spans.append([0, starts[0][0], "", [], None])
        open_headings: list[tuple[int, str]] = []  # (level, heading) of the enclosing headings
        for i, (start, heading, level, resumed, anchor) in enumerate(starts):
            while open_headings and open_headings[-1][0] >= level:
                open_headings.pop()
            open_headings.append((level, heading))
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            if end > start and (not resumed or text[start:end].strip()):
                if not resumed:
                    anchor = anchors.get(start) if anchors is not None else anchor_at(self.anchors, start)
                path = [h for _, h in open_headings]
                spans.extend([s, e, heading, path, anchor] for s, e in cut_long(text, start, end))
        return spans

    def _append(self, text: str) -> None:
        self._parts.append(text)
        self._length += len(text)

    def _anchor(self, at: int, page: int | None, source_offset: int) -> None:
        if self.source_map:
            last_at, last_page, last_source = self.source_map[-1]
            if last_page == page and last_source + (at - last_at) == source_offset:
                return  # the previous anchor already maps this piece
        self.source_map.append([at, page, source_offset])


def line_starts(text: str) -> list[int]:
    """Offsets where each line of `text` starts (a line ends at LF, CRLF or a lone CR)."""
    return [0] + [m.end() for m in re.finditer(r"\r\n?|\n", text)]


def cut_long(text: str, start: int, end: int, limit: int = SECTION_MAX_CHARS) -> list[tuple[int, int]]:
    """[start, end) as parts of at most `limit` characters, each ending at the last paragraph break in reach (else
    line break, else space; a part is never cut below a quarter of the limit for the sake of a break)."""
    parts = []
    while end - start > limit:
        cut = -1
        for separator in ("\n\n", "\n", " "):
            at = text.rfind(separator, start + limit // 4, start + limit)
            if at > start:
                cut = at + len(separator)
                break
        if cut < 0:
            cut = start + limit
        parts.append((start, cut))
        start = cut
    parts.append((start, end))
    return parts


def whole_sections(sections: list[list]) -> list[tuple[int, int, str]]:
    """(start, end, heading) of each section with its parts (cut at SECTION_MAX_CHARS) joined again; entries of
    imports made before heading paths (`[start, end, heading]`) are taken as they are."""
    out: list[tuple[int, int, str]] = []
    previous = None
    for section in sections:
        if not isinstance(section, (list, tuple)) or len(section) < 3:
            continue
        start, end, heading = int(section[0]), int(section[1]), str(section[2] or "")
        key = (heading, tuple(section[3]) if len(section) > 3 and section[3] else (), section[4:5])
        if out and previous == key and out[-1][1] == start:
            out[-1] = (out[-1][0], end, heading)
        else:
            out.append((start, end, heading))
        previous = key
    return out


def anchor_at(anchors: list[list], offset: int) -> str | None:
    """The id of the last anchor at or before `offset` (sorted `[offset, id]` pairs), or None."""
    row = bisect.bisect_right([a[0] for a in anchors], offset) - 1
    return anchors[row][1] if row >= 0 else None


def decode_text(raw: bytes, declared: str | None = None) -> tuple[str, str, str | None]:
    """(text, encoding, note): a byte-order mark, else the declared encoding, else UTF-8, else FALLBACK_ENCODING;
    binary content and bytes that none of these decode raise UnreadableFile."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding, None
            except UnicodeDecodeError as exc:
                raise UnreadableFile(f"undecodable bytes: starts with a {encoding} byte-order mark but byte "
                                     f"{exc.start} is invalid") from None
    if b"\x00" in raw[:8192]:
        raise UnreadableFile("binary content (NUL bytes), not text")
    tried = []
    for encoding in dict.fromkeys(e for e in (declared, "utf-8") if e):
        try:
            return raw.decode(encoding), encoding, None
        except UnicodeDecodeError as exc:
            tried.append(f"{encoding} (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
    try:
        text = raw.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError as exc:
        tried.append(f"{FALLBACK_ENCODING} (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
        raise UnreadableFile(f"undecodable bytes: not {' nor '.join(tried)}; re-save the file as UTF-8") from None
    bad = _CONTROL_CHARS.search(text)
    if bad:
        raise UnreadableFile(f"undecodable bytes: not {tried[-1]}, and as {FALLBACK_ENCODING} it has control "
                             f"character {bad.group()!r} at offset {bad.start()}; re-save the file as UTF-8")
    return text, FALLBACK_ENCODING, f"not {tried[-1]}: decoded as {FALLBACK_ENCODING}"


def known_codec(name: str | None) -> str | None:
    """The Python codec for an encoding label from a document, or None when Python has none."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


Reader = Callable[[bytes], Extracted]

# suffix (lower case) -> format name; each format is the module of that name in this package, with `read(raw)`
FORMATS: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown",
    ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html",
    ".pdf": "pdf",
}


def reader(fmt: str) -> Reader:
    """The reader of a format, imported on first use (pypdf alone takes a tenth of a second to import)."""
    return importlib.import_module(f"{__name__}.{fmt}").read


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of the parsing libraries: an import made with other versions is read again, not reused."""
    from importlib.metadata import version

    return {name: version(name) for name in ("pypdf", "markdown-it-py")}
