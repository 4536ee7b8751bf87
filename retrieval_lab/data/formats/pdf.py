"""PDF, via pypdf (pure Python, BSD licence; PyMuPDF extracts faster but is AGPL): each page's extracted text, pages
separated by a blank line. The source map anchors each page, so every text offset has its page. Title: the
document's metadata title, else the file name. Sections: the outline (bookmarks), each placed where its title
appears on its destination page, else at the top of that page.

An encrypted PDF that opens with the empty password (owner-only restrictions) is read; one that needs a password,
a damaged file and a PDF without a text layer are unreadable.
"""
from __future__ import annotations

import io
import logging
import re
from contextlib import contextmanager

from pypdf import PdfReader
from pypdf.errors import DependencyError
from pypdf.generic import Destination

from retrieval_lab.data.formats import Extracted, TextBuilder, UnreadableFile

PAGE_BREAK = "\n\n"


def read(raw: bytes) -> Extracted:
    if b"%PDF-" not in raw[:1024]:
        raise UnreadableFile("corrupt PDF (no %PDF- header: not a PDF file)")
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted:
                _decrypt(reader)
            pages = [page.extract_text() or "" for page in reader.pages]
        except UnreadableFile:
            raise
        except Exception as exc:  # pypdf raises many exception types on damaged files
            raise UnreadableFile(f"corrupt PDF ({type(exc).__name__}: {exc})") from None
        title = _metadata_title(reader)
        outline = _outline(reader)
    builder = TextBuilder()
    page_starts = []
    for number, text in enumerate(pages, start=1):
        text = text.rstrip()
        if text.strip():
            builder.separate(PAGE_BREAK)
        page_starts.append(builder.start_heading())
        builder.add(text, 0, page=number)
    if not builder.text().strip():
        raise UnreadableFile(f"no extractable text in {len(pages)} pages (scanned images? run OCR first)")
    full = builder.text()
    for heading, page_index, level in outline:
        builder.add_heading(_place(full, heading, page_starts, page_index), heading, level)
    _keep_last_per_offset(builder)
    return Extracted(text=full, title=title, source_map=builder.source_map, sections=builder.sections(),
                     details={"pages": len(pages)})


def _decrypt(reader: PdfReader) -> None:
    try:
        opened = reader.decrypt("")
    except DependencyError as exc:
        raise UnreadableFile(f"encrypted PDF that needs a decryption library: {exc}") from None
    if not opened:
        raise UnreadableFile("encrypted PDF (needs a password); decrypt it first, e.g. qpdf --decrypt")


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a damaged info dictionary costs the title, not the document
        return None
    if not title:
        return None
    return " ".join(str(title).split()) or None


def _outline(reader: PdfReader) -> list[tuple[str, int, int]]:
    """(title, 0-based page, level: 1 at the top) of every outline item, depth first (the reading order)."""
    try:
        items = reader.outline
    except Exception:  # a damaged outline costs the sections, not the document
        return []
    found: list[tuple[str, int, int]] = []

    def walk(nodes, level=1):
        for node in nodes:
            if isinstance(node, list):  # the children of the item before it
                walk(node, level + 1)
            elif isinstance(node, Destination):
                try:
                    page = reader.get_destination_page_number(node)
                except Exception:
                    continue
                title = " ".join(str(node.title or "").split())
                if title and page is not None and page >= 0:
                    found.append((title, page, level))

    walk(items)
    return found


def _place(text: str, heading: str, page_starts: list[int], page_index: int) -> int:
    """Where an outline title appears on its page (case and spacing ignored), preferring the start of a line
    (after a section number such as "1.2"), else the page's first character."""
    if page_index >= len(page_starts):
        return len(text)
    start = page_starts[page_index]
    end = page_starts[page_index + 1] if page_index + 1 < len(page_starts) else len(text)
    title = r"\s*".join(re.escape(word) for word in heading.split())
    page = text[start:end]
    at_line_start = re.search(rf"^[ \t]*(?:[\dA-Z]+(?:\.\d+)*\.?[ \t]+)?({title})", page, re.IGNORECASE | re.MULTILINE)
    if at_line_start:
        return start + at_line_start.start(1)
    anywhere = re.search(title, page, re.IGNORECASE)
    return start + anywhere.start() if anywhere else start


def _keep_last_per_offset(builder: TextBuilder) -> None:
    """Outline items that land on the same place (several on one page without a visible title): the deepest, i.e.
    the last in reading order, names the section."""
    by_offset = {}
    for start, heading, level in builder.headings:
        by_offset[start] = (heading, level)
    builder.headings[:] = [(start, heading, level) for start, (heading, level) in sorted(by_offset.items())]


@contextmanager
def _quiet_pypdf():
    """pypdf logs a warning per recoverable defect; the import report says what matters."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
