"""Content-addressed store for stage outputs (chunks, embeddings, indexes, runs, scores).

An entry is a folder `<root>/<stage>/<key[:2]>/<key>/` with `.npy` arrays (memory-mapped on load), optional JSON
payload and a `manifest.json` holding the inputs that produced it and a sha256 per file. The key is a hash of those
inputs, never of names or reprs, so two runs sharing a prefix of the pipeline share its outputs.

Writes go to a temporary folder renamed into place; a per-key file lock keeps two processes from computing the same
entry twice. An entry whose checksum does not match is reported, deleted and rebuilt. Nothing is pickled.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from retrieval_lab.errors import CacheError

log = logging.getLogger(__name__)

CACHE_ENV = "RETRIEVAL_LAB_CACHE"
MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "retrieval-lab").expanduser()


def content_key(stage: str, inputs: Any) -> str:
    """sha256 over the stage name and a canonical JSON of the inputs (dict keys sorted)."""
    blob = json.dumps({"stage": stage, "inputs": inputs}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


@dataclass
class Entry:
    """A cached stage output: arrays (memory-mapped), a JSON payload, and the manifest's metadata."""

    arrays: dict[str, np.ndarray]
    payload: Any
    meta: dict
    hit: bool


@dataclass
class EntryInfo:
    stage: str
    key: str
    path: Path
    bytes: int
    created: float
    last_used: float


class Cache:
    def __init__(self, root: str | Path | None = None, enabled: bool = True):
        self.root = Path(root).expanduser() if root else default_cache_dir()
        self.enabled = enabled

    def _dir(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    @contextmanager
    def _lock(self, stage: str, key: str):
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{stage}-{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self, stage: str, key: str) -> Entry | None:
        """Return the entry if present and intact; a corrupted entry is removed with a warning."""
        folder = self._dir(stage, key)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
            for name, digest in manifest["files"].items():
                if file_sha256(folder / name) != digest:
                    raise CacheError(f"checksum mismatch in {name}")
            arrays = {name[:-4]: np.load(folder / name, mmap_mode="r", allow_pickle=False)
                      for name in manifest["files"] if name.endswith(".npy")}
            payload = None
            if "payload.json" in manifest["files"]:
                payload = json.loads((folder / "payload.json").read_text())
        except (OSError, ValueError, KeyError, CacheError) as exc:
            log.warning("cache entry %s/%s is corrupted (%s); rebuilding it", stage, key[:12], exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        os.utime(manifest_path)  # last use, for `cache prune --unused-days`
        return Entry(arrays, payload, manifest.get("meta", {}), hit=True)

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray] | None = None, payload: Any = None,
             meta: dict | None = None, inputs: Any = None) -> None:
        final = self._dir(stage, key)
        tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            files = {}
            for name, arr in (arrays or {}).items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
                files[f"{name}.npy"] = file_sha256(tmp / f"{name}.npy")
            if payload is not None:
                (tmp / "payload.json").write_text(json.dumps(payload))
                files["payload.json"] = file_sha256(tmp / "payload.json")
            manifest = {"stage": stage, "key": key, "created": time.time(), "files": files,
                        "meta": meta or {}, "inputs": inputs}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
            if final.exists():  # a stale or corrupted entry; `load` already judged it unusable
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def get_or_compute(self, stage: str, inputs: Any,
                       compute: Callable[[], tuple[dict[str, np.ndarray] | None, Any, dict]]) -> Entry:
        """Load the entry for `inputs` or compute, store and return it. `compute` returns (arrays, payload, meta)."""
        key = content_key(stage, inputs)
        if not self.enabled:
            arrays, payload, meta = compute()
            return Entry(arrays or {}, payload, meta or {}, hit=False)
        entry = self.load(stage, key)
        if entry is not None:
            return entry
        with self._lock(stage, key):
            entry = self.load(stage, key)  # another process may have filled it while we waited
            if entry is not None:
                return entry
            arrays, payload, meta = compute()
            self.save(stage, key, arrays, payload, meta, inputs)
        entry = self.load(stage, key)
        if entry is None:
            raise CacheError(f"cache entry {stage}/{key[:12]} vanished right after writing it under {self.root}")
        entry.hit = False
        return entry

    def entries(self, stage: str | None = None) -> list[EntryInfo]:
        out = []
        if not self.root.exists():
            return out
        for manifest in sorted(self.root.glob(f"{stage or '*'}/*/*/{MANIFEST}")):
            folder = manifest.parent
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            try:
                created = json.loads(manifest.read_text()).get("created", 0.0)
            except ValueError:
                created = 0.0
            out.append(EntryInfo(folder.parent.parent.name, folder.name, folder, size, created,
                                 manifest.stat().st_mtime))
        return out

    def prune(self, stage: str | None = None, unused_days: float | None = None) -> list[EntryInfo]:
        """Delete entries (of one stage, or not used for `unused_days`); return what was deleted."""
        cutoff = time.time() - unused_days * 86400 if unused_days is not None else None
        removed = []
        for info in self.entries(stage):
            if cutoff is None or info.last_used < cutoff:
                shutil.rmtree(info.path, ignore_errors=True)
                removed.append(info)
        return removed
