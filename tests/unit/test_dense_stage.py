"""FAISS indexes on known vectors, and the dense first stage's config (the stage with real models on hand-made passages:
tests/integration/test_dense_stage_models.py)."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from retrieval_lab.cache import Cache
from retrieval_lab.dense import dense_stage
from retrieval_lab.pipeline import unused_config_groups
from retrieval_lab.pipeline.build import read_dense
from retrieval_lab.dense.index import IndexConfig, ann_recall, build_index, index_config, read, search, write
from retrieval_lab.errors import ConfigError

TEXTS = ["Vitamin D supplements reduce the risk of bone fractures in older adults.",
         "Mitochondria produce most of the chemical energy in cells.",
         "Aspirin lowers the risk of heart attack but raises bleeding risk.",
         "Deep sea fish live under enormous pressure without light.",
         "Exercise improves insulin sensitivity in type 2 diabetes."]


def unit_rows(n, d=32, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_is_exact_and_pads_short_results():
    vecs = unit_rows(50)
    rows, scores = search(build_index(vecs, IndexConfig(), False), vecs[:5], 3)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    rows, scores = search(build_index(vecs[:2], IndexConfig(), False), vecs[:1], 4)
    assert rows[0].tolist()[2:] == [-1, -1]


@pytest.mark.parametrize("config", [IndexConfig(name="hnsw", M=16, ef_search=64),
                                    IndexConfig(name="ivf", nlist=8, nprobe=8)])
def test_ann_indexes_agree_with_flat(config, tmp_path):
    vecs, queries = unit_rows(2000), unit_rows(50, seed=1)
    exact, _ = search(build_index(vecs, IndexConfig(), False), queries, 10)
    index = build_index(vecs, config, False)
    approx, _ = search(index, queries, 10)
    assert ann_recall(approx, exact, 10) >= 0.95  # ivf with nprobe = nlist is exhaustive
    write(index, tmp_path)
    restored = read(tmp_path, config)
    again, _ = search(restored, queries, 10)
    np.testing.assert_array_equal(again, approx)


def test_ann_recall_counts_overlap():
    assert ann_recall(np.array([[1, 2, 3]]), np.array([[3, 2, 1]]), 3) == 1.0
    assert ann_recall(np.array([[1, 9, 8]]), np.array([[1, 2, -1]]), 3) == 0.5


def test_index_config_errors_and_identity():
    with pytest.raises(ConfigError, match="index.name"):
        index_config({"name": "lsh"})
    with pytest.raises(ConfigError, match="index.nprobe"):
        index_config({"name": "ivf", "nlist": 4, "nprobe": 8})
    with pytest.raises(ConfigError, match="index.efSearch"):
        index_config({"name": "hnsw", "efSearch": 8})
    assert IndexConfig(name="flat", M=8).identity == IndexConfig(name="flat").identity
    hnsw = IndexConfig(name="hnsw")
    assert hnsw.build_params == IndexConfig(name="hnsw", ef_search=7).build_params  # same graph, other search
    assert hnsw.identity != IndexConfig(name="hnsw", ef_search=7).identity


def test_the_builder_reads_own_subnodes_else_top_level_groups_and_the_factory_gets_typed_configs():
    cfg = OmegaConf.create({"embedder": {"name": "wordllama", "backend": "static"}, "index": {"name": "hnsw"},
                            "retriever": {"name": "dense"}})
    stage = dense_stage(read_dense(cfg.retriever, cfg, "retriever"), Cache(enabled=False))
    assert (stage.embedder.config.name, stage.index_config.name) == ("wordllama", "hnsw")
    own = OmegaConf.create({"name": "dense", "embedder": {"name": "minilm_l3"}, "index": {"name": "ivf"}})
    config = read_dense(own, cfg, "retriever.stages.1")
    assert (config.embedder.name, config.index.name, config.embedder_key) == ("minilm_l3", "ivf",
                                                                               "retriever.stages.1.embedder")
    stage = dense_stage(config, Cache(enabled=False))
    assert (stage.embedder.config.name, stage.index_config.name) == ("minilm_l3", "ivf")
    assert stage.embedder.loaded is None  # the factory loads nothing
    with pytest.raises(ConfigError, match="retriever.model"):
        read_dense(OmegaConf.create({"name": "dense", "model": "x"}), cfg, "retriever")
    with pytest.raises(ConfigError, match="retriever.stages.1.embedder.batch_size"):
        read_dense(OmegaConf.create({"name": "dense", "embedder": {"batch_size": -1}}), cfg, "retriever.stages.1")
    with pytest.raises(ConfigError, match="embedder"):  # no sub-node and no top-level group
        read_dense(OmegaConf.create({"name": "dense"}), OmegaConf.create({}), "retriever")


def test_unused_groups_are_not_logged_for_bm25():
    from retrieval_lab.config import compose_config

    assert unused_config_groups(compose_config(["retriever=bm25"])) == {"embedder", "index"}
    assert unused_config_groups(compose_config(["retriever=dense", "embedder=wordllama"])) == set()
