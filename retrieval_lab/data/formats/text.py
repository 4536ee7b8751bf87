"""Plain text: the decoded file as it is, line endings as LF (no headings, so no sections)."""
from __future__ import annotations

from retrieval_lab.data.formats import Extracted, TextBuilder, decode_text, line_starts


def read(raw: bytes) -> Extracted:
    text, encoding, note = decode_text(raw)
    builder = TextBuilder()
    builder.add(text, 0)
    return Extracted(text=builder.text(), title=None, source_map=builder.source_map, sections=[],
                     details={"encoding": encoding, "line_starts": line_starts(text)}, note=note)
