"""One identity per model: the sha256 of its files, the key every embeddings, index and score cache entry carries.
Changing what is hashed (or how) invalidates every user's cache: tests/unit/test_model_store.py pins the values."""
from __future__ import annotations

import hashlib
from pathlib import Path

from retrieval_lab.cache import file_sha256
from retrieval_lab.errors import ModelNotFoundError

_HASH_MEMO: dict[tuple, str] = {}
_SKIP = {"README.md", ".gitattributes"}


def weights_sha256(path: Path, extra_files: list[Path] | tuple = ()) -> str:
    """sha256 over a model's files (a folder: every file but READMEs, sorted by relative path), memoized per
    (path, size, mtime) so asking twice in a process is free."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _SKIP
                   and ".cache" not in p.relative_to(path).parts) if path.is_dir() else [path]
    # (relative parts: a model saved inside the lab's own cache, e.g. `.cache/.../models/`, still hashes its files)
    files += [Path(p) for p in extra_files if Path(p).is_file()]
    if not files:  # an empty hash would make every such model share one identity (and its cache entries)
        raise ModelNotFoundError(f"{path} holds no model files to load or hash")
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key in _HASH_MEMO:
        return _HASH_MEMO[key]
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(path).as_posix() if path.is_dir() and p.is_relative_to(path) else p.name
        h.update(f"{rel}\0{file_sha256(p)}\n".encode())
    _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]
