"""Two processes filling one dense cache entry: the work is done once (real processes; the single-process tests are in
tests/unit/test_cache_dense.py)."""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np

from retrieval_lab.cache import Cache


def _fill(root: str, marker: str, barrier) -> None:
    cache = Cache(root)
    barrier.wait()

    def compute():
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the other process to reach the lock
        return {"embeddings": np.arange(12, dtype=np.float32).reshape(4, 3)}, None, {}

    entry = cache.get_or_compute("embeddings", {"shared": True}, compute)
    assert entry.arrays["embeddings"].shape == (4, 3)


def test_two_processes_fill_the_same_key_once(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    marker = tmp_path / "computed.txt"
    procs = [ctx.Process(target=_fill, args=(str(tmp_path / "cache"), str(marker), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(marker.read_text().split()) == 1  # computed by one process, loaded by the other
    entries = Cache(tmp_path / "cache").entries("embeddings")
    assert len(entries) == 1
    assert not list((tmp_path / "cache" / "embeddings").glob("*/.tmp-*"))  # no leftovers of the atomic write
