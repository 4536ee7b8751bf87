"""Plain text: the decoded file as it is (no headings, so no sections)."""
from __future__ import annotations

from retrieval_lab.data.formats import Extracted, decode_text


def read(raw: bytes) -> Extracted:
    text, encoding, note = decode_text(raw)
    return Extracted(text=text, title=None, source_map=[[0, None, 0]], sections=[],
                     details={"encoding": encoding}, note=note)
