"""Where a passage of an imported document sits, as a reader finds it: the heading path above it and a link into the
source file (HTML: the nearest element id before it, `R-intro.html#Vectors`; Markdown: the heading's slug, as GitHub
and most renderers make it; PDF: the page, with the outline item above it).

Read from the source file at display time (`search`), not stored by the importer: the imported text's source map
gives the passage's offset in the decoded file, and the file is parsed only up to that offset. A source file that is
gone or changed since the import (its sha256 differs) falls back to the heading of the imported section holding the
passage (`metadata.sections`), without a link.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

from retrieval_lab.data.folder import source_location

HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
PERMALINK_SIGNS = "¶§#"


@dataclass
class Place:
    file: str  # the document's path relative to the imported folder
    page: int | None = None
    headings: list[str] = field(default_factory=list)  # outermost first
    anchor: str | None = None  # fragment of the link: an HTML id or a Markdown heading slug
    source_file: Path | None = None  # the file on this machine, when it is still the imported one

    @property
    def link(self) -> str:
        """`file.html#anchor` (a file:// URL when the file is on this machine), `manual.pdf#page=3` for PDF."""
        target = self.source_file.as_uri() if self.source_file is not None else self.file
        if self.anchor:
            return f"{target}#{self.anchor}"
        if self.page is not None:
            return f"{target}#page={self.page}"
        return target


def place_of(metadata: dict, offset: int, root: Path | None) -> Place | None:
    """The place of the imported text's character `offset` of a document (None: not an imported document)."""
    if not metadata or not metadata.get("source"):
        return None
    source = metadata["source"]
    where = source_location(metadata, offset)
    place = Place(file=where["file"], page=where["page"])
    text = _unchanged_source(source, root)
    if text is not None:
        place.source_file = (root / source["path"]).resolve()
        place.headings, place.anchor = PARSERS[source["format"]](text, where["offset"])
        if place.headings or place.anchor:
            return place
    place.headings = _section_heading(metadata, offset)
    return place


def source_root(dataset_folder: Path) -> Path | None:
    """The folder an imported dataset was imported from (its manifest's `source`), else None."""
    from retrieval_lab.data.named import import_manifest

    manifest = import_manifest(Path(dataset_folder))
    return Path(manifest["source"]) if manifest and manifest.get("source") else None


def _unchanged_source(source: dict, root: Path | None) -> str | None:
    """The decoded source file as the importer decoded it, when it is there and unchanged; else None."""
    if root is None or source.get("format") not in PARSERS:
        return None
    path = root / source["path"]
    try:
        stat = path.stat()
        return _decoded(str(path), stat.st_size, stat.st_mtime_ns, source.get("sha256"), source["format"])
    except OSError:
        return None


@lru_cache(maxsize=16)  # the hits of one search often share a file; size and mtime key a rewritten file anew
def _decoded(path: str, size: int, mtime_ns: int, sha256: str | None, fmt: str) -> str | None:
    raw = Path(path).read_bytes()
    if sha256 and hashlib.sha256(raw).hexdigest() != sha256:
        return None
    from retrieval_lab.data.formats import decode_text

    declared = None
    if fmt == "html":
        from retrieval_lab.data.formats.html import _declared_charset

        declared = _declared_charset(raw)
    return decode_text(raw, declared)[0]


def _section_heading(metadata: dict, offset: int) -> list[str]:
    """The heading of the imported section holding `offset` (a list when the importer records the heading path)."""
    for section in metadata.get("sections") or []:
        start, end, heading = section[0], section[1], section[2]
        if start <= offset < end and heading:
            return [str(h) for h in heading] if isinstance(heading, list) else [str(heading)]
    return []


# --- HTML --------------------------------------------------------------------------------------------------------
class _Before(HTMLParser):
    """Headings (h1-h6) and element ids that start before `offset` of the decoded page."""

    def __init__(self, text: str, offset: int):
        super().__init__(convert_charrefs=True)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.limit = offset  # not `offset`: HTMLParser keeps its column there
        self.stack: list[tuple[int, str]] = []  # (level, text) of the headings above the offset
        self.anchor: str | None = None
        self.heading: tuple[int, list[str], str | None] | None = None  # the heading being read: level, text, id
        self.done = False

    def _position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if self._position() > self.limit:
            self.done = True
            return
        values = dict(attrs)
        anchor = values.get("id") or (values.get("name") if tag == "a" else None)
        if anchor:
            self.anchor = anchor
        if tag in HEADING_TAGS:
            self.heading = (HEADING_TAGS[tag], [], anchor)

    def handle_endtag(self, tag):
        if self.heading is not None and tag in HEADING_TAGS:
            level, parts, _ = self.heading
            title = " ".join("".join(parts).split()).rstrip(PERMALINK_SIGNS + " ")
            self.heading = None
            if title:
                self.stack = [h for h in self.stack if h[0] < level] + [(level, title)]

    def handle_data(self, data):
        if self.heading is not None:
            self.heading[1].append(data)


def html_place(text: str, offset: int) -> tuple[list[str], str | None]:
    parser = _Before(text, offset)
    # feed up to a little past the offset: enough to close a heading the passage starts inside
    parser.feed(text[:offset + 2000])
    return [title for _, title in parser.stack], parser.anchor


# --- Markdown ----------------------------------------------------------------------------------------------------
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_EXPLICIT_ID = re.compile(r"\s*\{#([^}\s]+)[^}]*\}\s*$")


def slug(title: str, seen: dict[str, int]) -> str:
    """GitHub's heading id: lower case, punctuation dropped, spaces to hyphens; a repeated one gets -1, -2, ..."""
    text = unicodedata.normalize("NFKC", title).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
    count = seen.get(text, 0)
    seen[text] = count + 1
    return text if count == 0 else f"{text}-{count}"


def markdown_place(text: str, offset: int) -> tuple[list[str], str | None]:
    stack: list[tuple[int, str]] = []
    anchor = None
    seen: dict[str, int] = {}
    fence = None
    previous = ""
    at = 0
    for line in text.splitlines(keepends=True):
        if at > offset:
            break
        bare = line.rstrip("\r\n")
        opened = _FENCE.match(bare)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
        elif opened:
            fence = opened.group(1)
        else:
            heading = None
            atx = _ATX.match(bare)
            if atx:
                heading = (len(atx.group(1)), atx.group(2))
            elif _SETEXT.match(bare) and previous.strip() and not _ATX.match(previous):
                heading = (1 if bare.strip()[0] == "=" else 2, previous.strip())
            if heading is not None:
                level, title = heading
                explicit = _EXPLICIT_ID.search(title)
                title = _EXPLICIT_ID.sub("", title).strip() if explicit else title.strip()
                anchor = explicit.group(1) if explicit else slug(_plain_markdown(title), seen)
                stack = [h for h in stack if h[0] < level] + [(level, _plain_markdown(title))]
        previous = bare
        at += len(line)
    return [title for _, title in stack], anchor


def _plain_markdown(title: str) -> str:
    """A heading's text without inline markup: links keep their text, emphasis and code marks go."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[*_`]", "", title).strip()


PARSERS = {"html": html_place, "markdown": markdown_place}
