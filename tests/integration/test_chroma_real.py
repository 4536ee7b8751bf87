"""index=chroma through the chain on a real collection: the same ANN recall@10 against exact search as the FAISS
indexes log, nDCG@10 of flat, and the collection reused from the cache by the next run."""
from __future__ import annotations

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.pipeline import run_experiment


def test_chroma_matches_flat_on_nfcorpus_and_is_cached(data_root, tmp_path):
    base = [f"dataset.root={data_root}", "dataset=nfcorpus", "retriever=dense", "embedder=wordllama",
            "embedder.progress=false", "tracking.enabled=false", f"cache.dir={tmp_path}"]  # a cold cache: the
    # "another collection" check below must not find one an earlier test run left in a shared cache
    flat = run_experiment(compose_config([*base, "index=flat"]))
    chroma = run_experiment(compose_config([*base, "index=chroma"]))
    timings = chroma.timings
    assert timings["dense_ann_recall_at_10"] >= 0.99
    assert chroma.evaluation.means["ndcg_at_10"] == pytest.approx(flat.evaluation.means["ndcg_at_10"], abs=0.005)
    assert timings["dense_index_size_bytes"] > 3633 * 256 * 4  # the vectors are in the collection
    low = run_experiment(compose_config([*base, "index=chroma", "index.ef_search=10", "index.M=4"]))
    assert low.timings["dense_index_cache_hit"] == 0.0  # other settings: another collection
    assert low.timings["dense_ann_recall_at_10"] < timings["dense_ann_recall_at_10"]
    again = run_experiment(compose_config([*base, "index=chroma", "index.ef_search=10", "index.M=4",
                                           "eval.depth=120"]))  # a new first-stage run over the same collection
    assert again.timings["dense_index_cache_hit"] == 1.0
