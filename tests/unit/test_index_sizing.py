"""Index sizing for N vectors (IVF lists and probes, PQ codes under a memory budget), IVF-PQ on random data, and the
flat index over memory-mapped embeddings."""
from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest

from retrieval_lab.dense.index import (IndexConfig, MappedFlat, ann_recall, auto_nlist, auto_nprobe, build_index,
                                       exact_search, index_config, read, resolve_sizing, search, training_sample,
                                       write)
from retrieval_lab.errors import ConfigError


def unit_rows(n, d=32, seed=0, clusters=20):
    """Rows around `clusters` centres, unit length (inner product = cosine), as embeddings cluster by topic."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = (centres[rng.integers(0, clusters, size=n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n, nlist, nprobe", [(10, 1, 1), (3_633, 93, 93), (5_183, 132, 105),
                                              (100_000, 1_265, 159), (1_000_000, 4_000, 500)])
def test_ivf_lists_and_probes_grow_with_n(n, nlist, nprobe):
    """4·sqrt(N) lists (at most N/39); nlist/8 probes, or 4,096 vectors' worth on small corpora."""
    assert auto_nlist(n) == nlist
    assert auto_nprobe(nlist, n) == nprobe
    sizing = resolve_sizing(IndexConfig(name="ivf"), n, 256)
    assert (sizing.kind, sizing.nlist, sizing.nprobe, sizing.train_size) == ("ivf", nlist, nprobe, min(n, 64 * nlist))


def test_set_values_win_and_are_clamped_to_n(caplog):
    assert resolve_sizing(IndexConfig(name="ivf", nlist=64, nprobe=16), 5_183, 256).nlist == 64
    with caplog.at_level(logging.WARNING):
        sizing = resolve_sizing(IndexConfig(name="ivf", nlist=500, nprobe=300, train_size=10_000), 200, 16)
    assert (sizing.nlist, sizing.nprobe, sizing.train_size) == (200, 200, 200)
    assert "index.nlist 500 exceeds the 200 vectors" in caplog.text
    assert resolve_sizing(IndexConfig(name="ivf", nprobe=2000), 100_000, 256).nprobe == 1_265  # auto nlist caps it


def test_memory_budget_turns_ivf_into_pq_codes_that_fit(caplog):
    big = IndexConfig(name="ivf", memory_budget_gb=2.0)
    assert resolve_sizing(big, 1_000_000, 256).kind == "ivf"  # 1.03 GB of float32 lists fit
    with caplog.at_level(logging.WARNING):
        sizing = resolve_sizing(IndexConfig(name="ivf", memory_budget_gb=0.05), 1_000_000, 256)
    assert "storing PQ codes" in caplog.text
    assert (sizing.kind, sizing.pq_m, sizing.refine) == ("ivfpq", 32, 4)  # 1M x (32 + 8 id bytes) = 0.04 GB
    assert sizing.stored_bytes <= 0.05e9 < resolve_sizing(IndexConfig(name="ivf"), 1_000_000, 256).stored_bytes
    assert resolve_sizing(IndexConfig(name="ivfpq"), 1_000_000, 256).pq_m == 64  # no budget: d/4
    assert resolve_sizing(IndexConfig(name="ivfpq", memory_budget_gb=100), 1_000_000, 384).pq_m == 192  # <= d/2
    with pytest.raises(ConfigError, match="index.memory_budget_gb.*cannot hold 1,000,000 vectors"):
        resolve_sizing(IndexConfig(name="ivfpq", memory_budget_gb=0.001), 1_000_000, 256)
    with pytest.raises(ConfigError, match="index.pq_m.*does not divide the embedding dimension 384"):
        resolve_sizing(IndexConfig(name="ivfpq", pq_m=100), 10_000, 384)


@pytest.mark.parametrize("node, key", [({"name": "ivfpq", "refine": -1}, "index.refine"),
                                       ({"name": "ivf", "memory_budget_gb": 0}, "index.memory_budget_gb"),
                                       ({"name": "ivfpq", "pq_m": 0}, "index.pq_m"),
                                       ({"name": "ivf", "query_threads": 0}, "index.query_threads")])
def test_invalid_sizing_settings_name_the_key(node, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        index_config(node)


def test_search_parameters_are_in_the_identity_not_the_build():
    pq = IndexConfig(name="ivfpq")
    assert pq.build_params == IndexConfig(name="ivfpq", nprobe=3, refine=0).build_params
    assert pq.identity != IndexConfig(name="ivfpq", refine=0).identity
    assert IndexConfig(name="ivf").build_params != IndexConfig(name="ivf", memory_budget_gb=1).build_params


def test_training_sample_is_deterministic_and_in_row_order():
    vecs = unit_rows(500)
    sample = training_sample(vecs, 100)
    np.testing.assert_array_equal(sample, training_sample(vecs, 100))
    rows = [int(np.flatnonzero((vecs == row).all(axis=1))[0]) for row in sample]
    assert rows == sorted(rows) and len(set(rows)) == 100
    assert training_sample(vecs, 900).shape == (500, 32)


def test_ivfpq_on_random_data_refines_to_ivf_recall_and_round_trips(tmp_path):
    vecs, queries = unit_rows(4000), unit_rows(60, seed=1)
    truth = exact_search(vecs, queries, 10)
    exhaustive = IndexConfig(name="ivfpq", nlist=16, nprobe=16, pq_m=8)
    index = build_index(vecs, exhaustive)
    coarse, _ = search(index, queries, 10)  # PQ scores only
    refined, scores = search(index, queries, 10, vecs, refine=8)
    assert ann_recall(refined, truth, 10) >= 0.95 > ann_recall(coarse, truth, 10)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vecs.T, refined, axis=1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    write(index, tmp_path)
    again, _ = search(read(tmp_path, exhaustive), queries, 10, vecs, refine=8)
    np.testing.assert_array_equal(again, refined)
    flat_lists = build_index(vecs, IndexConfig(name="ivf", nlist=16, nprobe=16))
    (tmp_path / "ivf").mkdir()
    write(flat_lists, tmp_path / "ivf")
    assert (tmp_path / "index.faiss").stat().st_size < (tmp_path / "ivf" / "index.faiss").stat().st_size / 2


def test_mapped_flat_equals_faiss_flat_bit_for_bit(tmp_path):
    vecs, queries = unit_rows(3000, d=64), unit_rows(30, d=64, seed=2)
    np.save(tmp_path / "v.npy", vecs)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    reference = faiss.IndexFlatIP(64)
    reference.add(vecs)
    ref_scores, ref_rows = reference.search(queries, 50)
    rows, scores = search(MappedFlat(mapped), queries, 50)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(scores, ref_scores)
    one_rows, one_scores = search(MappedFlat(mapped), queries[:1], 50, query_threads=1)  # one query, one thread
    np.testing.assert_array_equal(one_rows[0], ref_rows[0])
    np.testing.assert_array_equal(one_scores[0], ref_scores[0])
