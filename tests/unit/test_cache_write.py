"""Cache.get_or_write: outputs written straight into the entry's folder, a batch at a time; a partial write is never
a hit. (Embeddings encoded into a memory-mapped file equal those encoded into memory, with WordLlama:
tests/integration/test_cache_write_wordllama.py.)"""
from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from retrieval_lab.cache import TMP_PREFIX, Cache, content_key

ROWS = np.arange(40 * 8, dtype=np.float32).reshape(40, 8)


def writer(calls: list, fail_after: int | None = None):
    """Writes ROWS into a memory-mapped .npy 10 rows at a time (raising after `fail_after` rows), and a side file."""
    def write(folder):
        calls.append(folder)
        out = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float32, shape=ROWS.shape)
        for start in range(0, len(ROWS), 10):
            if fail_after is not None and start >= fail_after:
                raise KeyboardInterrupt("killed halfway")
            out[start:start + 10] = ROWS[start:start + 10]
        out.flush()
        (folder / "graph.bin").write_bytes(b"\x01\x02" * 1000)
        return {"rows": len(ROWS)}, {"seconds": 1.5}
    return write


def test_written_entry_is_a_memory_mapped_hit_that_verifies(tmp_path):
    cache, calls = Cache(tmp_path), []
    first = cache.get_or_write("embeddings", {"x": 1}, writer(calls))
    again = cache.get_or_write("embeddings", {"x": 1}, writer(calls))
    assert len(calls) == 1 and not first.hit and again.hit
    assert isinstance(again.arrays["vectors"], np.memmap)
    np.testing.assert_array_equal(again.arrays["vectors"], ROWS)
    assert again.payload == {"rows": 40} and again.meta == {"seconds": 1.5}
    assert (again.folder / "graph.bin").read_bytes() == b"\x01\x02" * 1000
    manifest = json.loads((again.folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"vectors.npy", "graph.bin", "payload.json"}
    assert cache.verify() == []  # the hashes recorded from disk are the files' own


def test_a_write_killed_halfway_leaves_no_entry_and_is_redone(tmp_path):
    cache, calls = Cache(tmp_path), []
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_write("embeddings", {"x": 2}, writer(calls, fail_after=20))
    key = content_key("embeddings", {"x": 2})
    assert cache.load("embeddings", key) is None
    assert not any(p.name.startswith(TMP_PREFIX) for p in tmp_path.rglob("*"))  # the partial folder is removed
    entry = cache.get_or_write("embeddings", {"x": 2}, writer(calls))
    assert len(calls) == 2 and not entry.hit
    np.testing.assert_array_equal(entry.arrays["vectors"], ROWS)


def test_a_folder_left_by_a_dead_process_is_never_read(tmp_path):
    """A process killed outright leaves its temporary folder, complete files and all: it is not an entry."""
    cache = Cache(tmp_path)
    key = content_key("embeddings", {"x": 3})
    orphan = tmp_path / "embeddings" / key[:2] / f"{TMP_PREFIX}dead"
    orphan.mkdir(parents=True)
    writer([])(orphan)
    (orphan / "manifest.json").write_text(json.dumps({"files": {}}))
    assert cache.load("embeddings", key) is None and cache.entries() == []
    calls = []
    assert not cache.get_or_write("embeddings", {"x": 3}, writer(calls)).hit and len(calls) == 1


def test_disabled_cache_writes_a_throwaway_folder(tmp_path):
    entry = Cache(tmp_path / "unused", enabled=False).get_or_write("embeddings", {"x": 4}, writer([]))
    folder = entry.folder
    np.testing.assert_array_equal(entry.arrays["vectors"], ROWS)
    assert not (tmp_path / "unused").exists()
    del entry
    gc.collect()
    assert not folder.exists()
