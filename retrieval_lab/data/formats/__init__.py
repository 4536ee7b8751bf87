"""Document formats: one reader per file suffix, each turning a file's bytes into imported text with a title, a
source map and heading-delimited sections.

The source map is a list of anchors `[text_offset, page, source_offset]`, sorted by text offset: the imported text
from `text_offset` on comes from `source_offset` onward, character for character, until the next anchor. `page` is
the 1-based PDF page (then `source_offset` counts characters of that page's extracted text) or None for unpaged
formats (then it counts characters of the decoded file). Sections are `[start, end, heading]` spans of the imported
text, from one heading to the next; they cover the whole text once a document has a heading.
"""
from __future__ import annotations

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


class TextBuilder:
    """Imported text assembled piece by piece: separators are owed, not written, so a document never starts or ends
    with one and block breaks never stack; every piece with a known origin extends the source map."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._owed = ""
        self.source_map: list[list] = []
        self.headings: list[tuple[int, str]] = []  # (text offset, heading)

    def __len__(self) -> int:
        return self._length

    def separate(self, separator: str = "\n\n") -> None:
        """Owe a separator before the next piece: the strongest one owed wins (space < line < paragraph)."""
        if self._length and _SEPARATOR_RANK[separator] > _SEPARATOR_RANK[self._owed]:
            self._owed = separator

    def add(self, text: str, source_offset: int | None = None, page: int | None = None) -> int:
        """Append `text` (after any owed separator); returns the offset where it starts."""
        if not text:
            return self._length
        if self._owed:
            self._append(self._owed)
            self._owed = ""
        start = self._length
        if source_offset is not None:
            self._anchor(start, page, source_offset)
        self._append(text)
        return start

    def start_heading(self) -> int:
        """Offset where the next piece will start (after the owed separator, if any text precedes it)."""
        return self._length + (len(self._owed) if self._length else 0)

    def add_heading(self, start: int, heading: str) -> None:
        if heading and start < self._length:
            self.headings.append((start, heading))

    def checkpoint(self) -> tuple[int, int, int, str]:
        return len(self._parts), len(self.source_map), len(self.headings), self._owed

    def rollback(self, mark: tuple[int, int, int, str]) -> None:
        """Forget everything added since `checkpoint()` (e.g. a list found to be navigation once it closed)."""
        parts, anchors, headings, owed = mark
        del self._parts[parts:]
        del self.source_map[anchors:]
        del self.headings[headings:]
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

    def sections(self) -> list[list]:
        """`[start, end, heading]` from each heading to the next; text before the first heading is a section with
        an empty heading."""
        if not self.headings:
            return []
        text = self.text()
        starts = sorted(self.headings)
        spans = []
        if starts[0][0] > 0 and text[:starts[0][0]].strip():
            spans.append([0, starts[0][0], ""])
        for i, (start, heading) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            if end > start:
                spans.append([start, end, heading])
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
