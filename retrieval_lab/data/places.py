"""Where a passage of an imported document sits, as a reader finds it: the heading path above it and a link into the
source file (HTML: the nearest element id before it, `R-intro.html#Vectors`; Markdown: the heading's slug, as GitHub
and most renderers make it; PDF: the page).

The importer records each document's source map, sections (heading paths) and anchors (data/formats);
`source_location` reads where a text offset comes from (the one accessor for it), and `place_of` turns that into a
link a browser opens: a file:// URL when the source file is still the imported one (its sha256 unchanged), else the
path relative to the imported folder, without an anchor that may no longer be there.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from retrieval_lab.data.formats import anchor_at


def source_location(metadata: dict, offset: int) -> dict:
    """Where the imported text's character `offset` comes from:
    - "file": the path relative to the imported folder; "page": the PDF page (else None);
    - "offset": in the page's extracted text for PDF, else in the decoded file; "line": 1-based line of the file
      (None for PDF and imports made before lines were recorded);
    - "heading_path": the headings of the section holding it, outermost first ([] outside any section);
    - "anchor": the nearest link target at or before it (HTML element id, Markdown heading slug; None if none),
      so `file#anchor` opens the page there;
    - "link": "file#anchor", or "file" without an anchor."""
    source = metadata["source"]
    anchors = source["map"]
    row = max(bisect.bisect_right([a[0] for a in anchors], offset) - 1, 0)
    at, page, origin = anchors[row] if anchors else (0, None, 0)
    file_offset = origin + max(offset - at, 0)
    lines = source.get("line_starts")
    line = bisect.bisect_right(lines, file_offset) if lines and page is None else None
    section = section_at(metadata, offset)
    anchor = anchor_at(metadata.get("anchors") or [], offset)
    return {"file": source["path"], "page": page, "offset": file_offset, "line": line,
            "heading_path": list(section[3]) if section and len(section) > 3 else [section[2]] if section else [],
            "anchor": anchor, "link": f"{source['path']}#{anchor}" if anchor else source["path"]}


def section_at(metadata: dict, offset: int) -> list | None:
    """The `[start, end, heading, path, anchor]` section holding `offset`, or None."""
    sections = metadata.get("sections") or []
    row = bisect.bisect_right([s[0] for s in sections], offset) - 1
    return sections[row] if row >= 0 and offset < sections[row][1] else None


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
    where = source_location(metadata, offset)
    place = Place(file=where["file"], page=where["page"], headings=[str(h) for h in where["heading_path"]])
    if _unchanged(metadata["source"], root):
        place.source_file = (root / metadata["source"]["path"]).resolve()
        place.anchor = where["anchor"]
    return place


def source_root(dataset_folder: Path) -> Path | None:
    """The folder an imported dataset was imported from (its manifest's `source`), else None."""
    from retrieval_lab.data.named import import_manifest

    manifest = import_manifest(Path(dataset_folder))
    return Path(manifest["source"]) if manifest and manifest.get("source") else None


def _unchanged(source: dict, root: Path | None) -> bool:
    """Whether the source file is there and is the file that was imported."""
    if root is None:
        return False
    path = root / source["path"]
    try:
        stat = path.stat()
    except OSError:
        return False
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns) == source.get("sha256")


@lru_cache(maxsize=64)  # the hits of one search often share a file; size and mtime key a rewritten file anew
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
