"""Content-addressed store for stage outputs (chunks, embeddings, indexes, runs, scores).

An entry is a folder `<root>/<stage>/<key[:2]>/<key>/` with `.npy` arrays (memory-mapped on load), optional JSON
payload and a `manifest.json` holding the inputs that produced it and, per file, its size, its sha256 and a sha256 of
its edges (first and last EDGE bytes), all computed from the bytes as they are written. The key is a hash of the stage
name, the stage's version (STAGE_VERSIONS) and those inputs, never of names or reprs, so two runs sharing a prefix
of the pipeline share its outputs and a changed stage never replays what its old code wrote.

A hit is cheap: `load` checks that every array file exists with its recorded size and edges and that the `.npy`
headers parse, but does not re-hash whole arrays; that catches truncated, missing, extended and zero-filled-tail
files, not a flipped bit in the middle of a large array. The JSON payload is read whole anyway and checked in full.
`verify` (the `cache verify` command) re-hashes every file. A damaged entry found on load is reported, deleted and
rebuilt; `verify` reports it (and deletes it when asked). Writes go to a temporary folder renamed into place; a
per-key file lock keeps two processes from computing the same entry twice. Nothing is pickled.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from retrieval_lab.errors import CacheError

log = logging.getLogger(__name__)

CACHE_ENV = "RETRIEVAL_LAB_CACHE"
MANIFEST = "manifest.json"
PAYLOAD = "payload.json"
TMP_PREFIX = ".tmp-"

# Version of every stage whose output is keyed with `content_key`; it is part of the key. Bump a stage's number when
# its output changes for the same inputs (a fixed bug, a changed default inside the code), so entries the old code
# wrote are never replayed. A stage missing here is a programming error: add it with version 1. (Not the lab's
# source revision, which a sweep records per run: sweep/state.source_revision.)
STAGE_VERSIONS = {
    "passages": 3,  # chunking (continues chunking's former CHUNKING_VERSION 2)
    "embeddings": 1,
    "indexes": 2,  # HNSW / IVF / IVF-PQ indexes (2: faiss.write_index files, IVF sized for N)
    "onnx_models": 1,  # exported (and quantized) ONNX graphs
    "step_runs": 1,  # every chain step's run of a query set (pipeline.chain; first-stage runs were first_stage_runs)
    "rerank_scores": 1,  # cross-encoder score store (one SQLite file per model identity)
    "train_embedder": 1,  # fine-tuned bi-encoder folders under models/
    "train_reranker": 1,  # trained cross-encoder folders under models/
    "teacher_logits": 1,  # a distillation teacher's logits of a student's training pairs (training/reranker.py)
    "synth_llm": 1,  # chat-endpoint answers of `data synth --generator llm`, by (model, prompt, passage)
}

EDGE = 1 << 16  # bytes at each end of a file that `load` hashes: 2 reads, whatever the file's size
WRITE_BLOCK = 1 << 24


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "retrieval-lab").expanduser()


def stage_version(stage: str) -> int:
    try:
        return STAGE_VERSIONS[stage]
    except KeyError:
        raise ValueError(f"unknown cache stage {stage!r}: add it to STAGE_VERSIONS in retrieval_lab/cache.py "
                         f"(known: {', '.join(sorted(STAGE_VERSIONS))})") from None


def content_key(stage: str, inputs: Any) -> str:
    """sha256 over the stage name, its version and a canonical JSON of the inputs (dict keys sorted). The blob's
    field keeps its first name, "code_version": renaming it would change every key and orphan every cache."""
    blob = json.dumps({"stage": stage, "code_version": stage_version(stage), "inputs": inputs}, sort_keys=True,
                      default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_edges_sha256(path: Path, size: int) -> str:
    """sha256 of a file's first EDGE bytes followed by its last EDGE bytes (they overlap in a small file)."""
    with open(path, "rb") as fh:
        head = os.pread(fh.fileno(), EDGE, 0)
        tail = os.pread(fh.fileno(), EDGE, max(0, size - EDGE))
    return hashlib.sha256(head + tail).hexdigest()


class _DigestingWriter:
    """A file opened for writing that hashes the bytes written to it (all of them, and its edges) and counts them."""

    def __init__(self, path: Path):
        self._fh = open(path, "wb")
        self._sha = hashlib.sha256()
        self._head = b""
        self._tail = b""
        self.size = 0

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        self._fh.write(data)
        self._sha.update(data)
        self.size += len(data)
        if len(self._head) < EDGE:
            self._head += bytes(data[:EDGE - len(self._head)])
        self._tail = bytes(data[-EDGE:]) if len(data) >= EDGE else (self._tail + bytes(data))[-EDGE:]
        return len(data)

    def close(self) -> dict:
        """Close the file; return its record for the manifest."""
        self._fh.close()
        return {"bytes": self.size, "sha256": self._sha.hexdigest(),
                "edges_sha256": hashlib.sha256(self._head + self._tail).hexdigest()}


def write_npy(path: Path, array: np.ndarray) -> dict:
    """Write `array` as a .npy file; return its record (size, sha256, edges sha256) from the bytes written."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise CacheError(f"cannot cache {path.name}: arrays of Python objects would need pickling")
    writer = _DigestingWriter(path)
    try:
        np.lib.format.write_array_header_1_0(writer, np.lib.format.header_data_from_array_1_0(array))
        data = memoryview(array.reshape(-1).view(np.uint8))
        for start in range(0, len(data), WRITE_BLOCK):
            writer.write(data[start:start + WRITE_BLOCK])
    finally:
        record = writer.close()
    return record


def write_bytes(path: Path, data: bytes) -> dict:
    writer = _DigestingWriter(path)
    try:
        writer.write(data)
    finally:
        record = writer.close()
    return record


def _file_record(path: Path) -> dict:
    """The manifest record of a file written by other means than `write_npy` (hashed from disk)."""
    size = os.stat(path).st_size
    return {"bytes": size, "sha256": file_sha256(path), "edges_sha256": file_edges_sha256(path, size)}


def _map_arrays(folder: Path) -> dict[str, np.ndarray]:
    return {path.stem: np.load(path, mmap_mode="r", allow_pickle=False) for path in sorted(folder.glob("*.npy"))}


def _check_cheap(path: Path, record: dict) -> None:
    """What `load` checks per file: present, recorded size, recorded edges. Raises CacheError."""
    size = os.stat(path).st_size  # FileNotFoundError (an OSError) when missing
    if size != record["bytes"]:
        raise CacheError(f"{path.name} has {size} bytes, the manifest says {record['bytes']}")
    if file_edges_sha256(path, size) != record["edges_sha256"]:
        raise CacheError(f"{path.name}: first or last {EDGE} bytes differ from what was written")


def _read_payload(path: Path, record: dict) -> Any:
    """The JSON payload, read whole anyway, so its full sha256 costs little next to parsing it."""
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != record["sha256"]:
        raise CacheError(f"{path.name}: sha256 differs from the one recorded when it was written")
    return json.loads(raw)


@dataclass
class Entry:
    """A cached stage output: arrays (memory-mapped), a JSON payload, and the manifest's metadata; `folder` holds
    its files (other than .npy arrays, those a `get_or_write` writer chose)."""

    arrays: dict[str, np.ndarray]
    payload: Any
    meta: dict
    hit: bool
    folder: Path | None = None


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
        """Return the entry if present and it passes the cheap checks (sizes, edges, .npy headers); a damaged entry
        is removed with a warning."""
        folder = self._dir(stage, key)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
            records = manifest["files"]
            for name, record in records.items():
                if name != PAYLOAD:
                    _check_cheap(folder / name, record)
            arrays = {name[:-4]: np.load(folder / name, mmap_mode="r", allow_pickle=False)
                      for name in records if name.endswith(".npy")}
            payload = _read_payload(folder / PAYLOAD, records[PAYLOAD]) if PAYLOAD in records else None
        except (OSError, ValueError, KeyError, TypeError, CacheError) as exc:
            log.warning("cache entry %s/%s is corrupted (%s); rebuilding it", stage, key[:12], exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        os.utime(manifest_path)  # last use, for `cache prune --unused-days`
        return Entry(arrays, payload, manifest.get("meta", {}), hit=True, folder=folder)

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray] | None = None, payload: Any = None,
             meta: dict | None = None, inputs: Any = None) -> None:
        stage_version(stage)  # an unknown stage fails before anything is written
        tmp = self._tmp_dir(stage, key)
        try:
            files = {f"{name}.npy": write_npy(tmp / f"{name}.npy", arr) for name, arr in (arrays or {}).items()}
            self._commit(stage, key, tmp, files, payload, meta, inputs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _tmp_dir(self, stage: str, key: str) -> Path:
        """A fresh folder beside the entry's final place (same file system: the rename is atomic)."""
        tmp = self._dir(stage, key).parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        return tmp

    def _commit(self, stage: str, key: str, tmp: Path, files: dict[str, dict], payload: Any, meta: dict | None,
                inputs: Any) -> None:
        """Add the payload and the manifest (written last) to `tmp` and rename it into place."""
        if payload is not None:
            files[PAYLOAD] = write_bytes(tmp / PAYLOAD, json.dumps(payload).encode("utf-8"))
        manifest = {"stage": stage, "key": key, "stage_version": stage_version(stage), "created": time.time(),
                    "files": files, "meta": meta or {}, "inputs": inputs}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
        final = self._dir(stage, key)
        if final.exists():  # a stale or corrupted entry; `load` already judged it unusable
            shutil.rmtree(final)
        os.rename(tmp, final)

    def get_or_compute(self, stage: str, inputs: Any,
                       compute: Callable[[], tuple[dict[str, np.ndarray] | None, Any, dict]],
                       valid: Callable[[Any], bool] | None = None) -> Entry:
        """Load the entry for `inputs` or compute, store and return it. `compute` returns (arrays, payload, meta).
        With `valid`, a payload it rejects is returned but never stored, and a stored one it rejects (written before
        the check existed) counts as a miss: a failed answer is asked again, not replayed from the cache."""
        key = content_key(stage, inputs)
        if not self.enabled:
            arrays, payload, meta = compute()
            return Entry(arrays or {}, payload, meta or {}, hit=False)

        def usable(entry: Entry | None) -> bool:
            return entry is not None and (valid is None or valid(entry.payload))

        entry = self.load(stage, key)
        if usable(entry):
            return entry
        with self._lock(stage, key):
            entry = self.load(stage, key)  # another process may have filled it while we waited
            if usable(entry):
                return entry
            arrays, payload, meta = compute()
            if valid is not None and not valid(payload):
                return Entry(arrays or {}, payload, meta or {}, hit=False)
            self.save(stage, key, arrays, payload, meta, inputs)
        entry = self.load(stage, key)
        if entry is None:
            raise CacheError(f"cache entry {stage}/{key[:12]} vanished right after writing it under {self.root}")
        entry.hit = False
        return entry

    def get_or_write(self, stage: str, inputs: Any, write: Callable[[Path], tuple[Any, dict]]) -> Entry:
        """`get_or_compute` for outputs too large to hold in memory twice (a million embeddings, an ANN index):
        `write(folder)` writes its files straight into an empty temporary folder (.npy arrays with
        `np.lib.format.open_memmap`, a batch of rows at a time, or any other file) and returns (payload, meta).
        The files are hashed from disk once `write` returns, and only then is the folder renamed into place: a
        write that fails or is killed halfway never becomes an entry. With the cache disabled the folder is a
        throwaway one, deleted when the returned entry is."""
        key = content_key(stage, inputs)
        if not self.enabled:
            folder = Path(tempfile.mkdtemp(prefix="retrieval-lab-"))
            try:
                payload, meta = write(folder)
                entry = Entry(_map_arrays(folder), payload, meta or {}, hit=False, folder=folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            weakref.finalize(entry, shutil.rmtree, folder, True)  # mapped arrays outlive their unlinked files
            return entry
        entry = self.load(stage, key)
        if entry is not None:
            return entry
        with self._lock(stage, key):
            entry = self.load(stage, key)
            if entry is not None:
                return entry
            tmp = self._tmp_dir(stage, key)
            try:
                payload, meta = write(tmp)
                files = {path.name: _file_record(path) for path in sorted(tmp.iterdir()) if path.is_file()}
                self._commit(stage, key, tmp, files, payload, meta, inputs)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
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
            if folder.name.startswith(TMP_PREFIX):  # being written
                continue
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            try:
                created = json.loads(manifest.read_text()).get("created", 0.0)
            except ValueError:
                created = 0.0
            out.append(EntryInfo(folder.parent.parent.name, folder.name, folder, size, created,
                                 manifest.stat().st_mtime))
        return out

    def verify_entry(self, folder: Path) -> str | None:
        """Full check of one entry: every file's sha256 against the manifest. Returns what is wrong, or None."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            records = manifest["files"]
            if manifest.get("key") != folder.name:
                return f"manifest names key {str(manifest.get('key'))[:16]}, the folder is {folder.name[:16]}"
            for name, record in records.items():
                if not isinstance(record, dict):
                    return "manifest from an older lab version (no per-file sizes; its key is never looked up now)"
                path = folder / name
                if not path.exists():
                    return f"{name} is missing"
                size = path.stat().st_size
                if size != record["bytes"]:
                    return f"{name} has {size} bytes, the manifest says {record['bytes']}"
                if file_sha256(path) != record["sha256"]:
                    return f"{name}: sha256 differs from the one recorded when it was written"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable manifest ({exc})"
        return None

    def verify(self, stage: str | None = None, delete: bool = False,
               on_entry: Callable[[EntryInfo, str | None], None] | None = None) -> list[tuple[EntryInfo, str]]:
        """Full check of every entry (of one stage), `on_entry(info, problem or None)` as each is checked; returns
        the damaged ones with what is wrong, after deleting them with `delete`."""
        damaged = []
        for info in self.entries(stage):
            problem = self.verify_entry(info.path)
            if on_entry is not None:
                on_entry(info, problem)
            if problem is not None:
                damaged.append((info, problem))
                if delete:
                    with self._lock(info.stage, info.key):
                        shutil.rmtree(info.path, ignore_errors=True)
        return damaged

    def prune(self, stage: str | None = None, unused_days: float | None = None) -> list[EntryInfo]:
        """Delete entries (of one stage, or not used for `unused_days`); return what was deleted."""
        cutoff = time.time() - unused_days * 86400 if unused_days is not None else None
        removed = []
        for info in self.entries(stage):
            if cutoff is None or info.last_used < cutoff:
                shutil.rmtree(info.path, ignore_errors=True)
                removed.append(info)
        return removed
