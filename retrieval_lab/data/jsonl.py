"""JSON Lines with located errors (BEIR corpus and queries files, questions files)."""
from __future__ import annotations

import json
from pathlib import Path

from retrieval_lab.errors import DataError


def json_objects(path: Path, lines, fix: str):
    """Yield (line number, object) for each non-blank (line number, text) of a JSONL file; anything but one JSON
    object per line is a DataError naming the line, with `fix`."""
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", lineno, fix) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
        yield lineno, obj
