"""index=chroma: each setting reaches Chroma and changes what it should (a store that silently ignores one is what
users get burned by): space changes the scores and the ranking, M, ef_construction and ef_search change recall
against exact search; every setting is in the cache key."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.dense import chroma_index
from retrieval_lab.dense.index import ann_recall, index_config
from retrieval_lab.errors import ConfigError

RNG = np.random.default_rng(0)
VECTORS = RNG.standard_normal((3000, 48)).astype(np.float32)  # random 48-d points: hard for a graph, so settings show
QUERIES = RNG.standard_normal((150, 48)).astype(np.float32)
TRUTH = chroma_index.exact_rows(VECTORS, QUERIES, 10, "ip")


def recall(tmp_path, name, M=32, ef_construction=200, ef_search=10, space="ip", vectors=VECTORS):
    folder = tmp_path / name
    folder.mkdir()
    chroma_index.build(vectors, folder, M, ef_construction, ef_search, space)
    index = chroma_index.ChromaIndex(folder, space)
    assert index.configuration["max_neighbors"] == M and index.configuration["ef_search"] == ef_search
    assert index.configuration["ef_construction"] == ef_construction and index.configuration["space"] == space
    rows, _ = index.search(QUERIES, 10)
    return ann_recall(rows, TRUTH, 10)


def test_ef_search_M_and_ef_construction_change_recall(tmp_path):
    base = recall(tmp_path, "base")  # M 32, ef_construction 200, ef_search 10: measured 0.70 here
    assert recall(tmp_path, "ef_search", ef_search=200) > base + 0.2  # 1.00
    assert recall(tmp_path, "small_M", M=4) < base - 0.2  # 0.20
    assert recall(tmp_path, "low_ef_construction", ef_construction=10) < base - 0.03  # 0.62


def test_space_changes_scores_and_ranking(tmp_path):
    scaled = VECTORS[:400] * RNG.uniform(0.2, 3.0, (400, 1)).astype(np.float32)  # norms differ: spaces disagree
    query = QUERIES[:5]
    tops = {}
    for space in chroma_index.SPACES:
        folder = tmp_path / space
        folder.mkdir()
        chroma_index.build(scaled, folder, 32, 200, 400, space)  # ef_search >= n: exact
        rows, scores = chroma_index.ChromaIndex(folder, space).search(query, 10)
        np.testing.assert_array_equal(rows, chroma_index.exact_rows(scaled, query, 10, space))
        picked = scaled[rows[0]]
        if space == "ip":
            want = picked @ query[0]
        elif space == "cosine":
            want = picked @ query[0] / np.linalg.norm(picked, axis=1) / np.linalg.norm(query[0])
        else:
            want = -((picked - query[0]) ** 2).sum(axis=1)
        np.testing.assert_allclose(scores[0], want, rtol=1e-3, atol=1e-3)
        tops[space] = rows[:, 0].tolist()
    assert len({tuple(top) for top in tops.values()}) == 3


def test_fewer_vectors_than_k_are_padded(tmp_path):
    chroma_index.build(VECTORS[:3], tmp_path, 16, 100, 50, "ip")
    rows, scores = chroma_index.ChromaIndex(tmp_path, "ip").search(QUERIES[:2], 5)
    assert (rows[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all() and (rows[:, :3] >= 0).all()


def test_every_setting_is_in_the_cache_key_and_space_is_checked():
    base = index_config({"name": "chroma"})
    keys = {str(base.build_params)}
    for change in ({"M": 8}, {"ef_construction": 50}, {"ef_search": 64}, {"space": "cosine"}):
        keys.add(str(index_config({"name": "chroma", **change}).build_params))
    assert len(keys) == 5
    with pytest.raises(ConfigError, match="index.space"):
        index_config({"name": "chroma", "space": "dot"})
    with pytest.raises(ConfigError, match=r"index=hnsw searches inner product only"):
        index_config({"name": "hnsw", "space": "l2"})


def test_a_missing_chromadb_is_a_config_error_with_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "chromadb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"index.name(.|\n)*pip install 'retrieval-lab\[chroma\]'"):
        index_config({"name": "chroma"})
    index_config({"name": "hnsw"})  # the FAISS indexes do not need it
