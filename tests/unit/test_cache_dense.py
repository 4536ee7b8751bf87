"""The content-addressed cache as the dense stage uses it: hits, misses, corruption, the CLI (two processes at once:
tests/integration/test_cache_dense_processes.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval_lab.cache import Cache, content_key
from retrieval_lab.cli import main as cli_main


def _compute(value: float, calls: list):
    def compute():
        calls.append(1)
        return {"embeddings": np.full((4, 3), value, dtype=np.float32)}, {"note": "x"}, {"encode_seconds": 1.0}
    return compute


def test_miss_then_hit_memory_mapped(tmp_path):
    cache, calls = Cache(tmp_path), []
    first = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    second = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert isinstance(second.arrays["embeddings"], np.memmap)
    assert second.payload == {"note": "x"} and second.meta["encode_seconds"] == 1.0
    np.testing.assert_array_equal(second.arrays["embeddings"], np.ones((4, 3), dtype=np.float32))


def test_different_inputs_miss(tmp_path):
    cache, calls = Cache(tmp_path), []
    cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    other = cache.get_or_compute("embeddings", {"a": 2}, _compute(2.0, calls))
    assert not other.hit and len(calls) == 2
    assert content_key("embeddings", {"a": 1, "b": 2}) == content_key("embeddings", {"b": 2, "a": 1})


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_corrupted_entry_is_detected_and_rebuilt(tmp_path, caplog, damage):
    cache, calls = Cache(tmp_path), []
    cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    folder = cache._dir("embeddings", content_key("embeddings", {"a": 1}))
    npy = folder / "embeddings.npy"
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:-8])
    elif damage == "flip":
        data = bytearray(npy.read_bytes())
        data[-1] ^= 0xFF
        npy.write_bytes(bytes(data))
    else:
        (folder / "manifest.json").write_text("{not json")
    with caplog.at_level("WARNING"):
        entry = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert not entry.hit and len(calls) == 2
    assert "corrupted" in caplog.text and "rebuilding" in caplog.text
    np.testing.assert_array_equal(entry.arrays["embeddings"], np.ones((4, 3), dtype=np.float32))
    assert cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls)).hit


def test_cache_cli_ls_du_prune(tmp_path, capsys):
    cache = Cache(tmp_path)
    cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, []))
    cache.get_or_compute("indexes", {"a": 1}, _compute(1.0, []))
    assert cli_main(["cache", "ls", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and "embeddings" in out and "indexes" in out
    assert cli_main(["cache", "du", "--dir", str(tmp_path)]) == 0
    assert "total" in capsys.readouterr().out
    assert cli_main(["cache", "prune", "--dir", str(tmp_path)]) == 2  # refuses without a selection
    assert len(cache.entries()) == 2
    assert cli_main(["cache", "prune", "--dir", str(tmp_path), "--unused-days", "1"]) == 0
    assert len(cache.entries()) == 2  # just used
    assert cli_main(["cache", "prune", "--dir", str(tmp_path), "--stage", "indexes", "--all"]) == 0
    assert [e.stage for e in cache.entries()] == ["embeddings"]
    old = time.time() - 3 * 86400
    for e in cache.entries():
        os.utime(e.path / "manifest.json", (old, old))
    assert cli_main(["cache", "prune", "--dir", str(tmp_path), "--unused-days", "2"]) == 0
    assert cache.entries() == [] and Path(tmp_path).exists()
