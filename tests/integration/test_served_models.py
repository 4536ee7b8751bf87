"""Served models against a real server: infinity-emb (its own virtualenv, `make infinity-server`) on 127.0.0.1,
serving the MiniLM-L6 weights the lab bundles as an embedder and a cross-encoder built from them as a reranker. The
test starts and stops it.

- embedder=openai_compatible gives the local embedder's vectors (same weights), and on a Cranfield sample the same
  nDCG@10 (within 0.002); a second run is free (no request, embeddings from the cache), and tokens and cost are logged;
- reranker=http gives the local cross-encoder's scores for the same folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.dense.embedders import load_embedder
from retrieval_lab.models.resolve import resolve_model
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.rerank import make_scorer, reranker_config
from tests.integration.infinity_server import INFINITY, ServerFailed, infinity_server
from tests.integration.samples import judged_sample


def cross_encoder_folder(folder: Path) -> Path:
    """A one-logit cross-encoder on the MiniLM-L6 body, head seeded: untrained, but the same model on both sides."""
    if not (folder / "model.safetensors").exists():
        import torch
        from sentence_transformers import CrossEncoder

        torch.manual_seed(0)
        CrossEncoder(str(resolve_model("minilm_l6").path), num_labels=1, device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not INFINITY.exists():
        pytest.skip(f"infinity-emb is not installed at {INFINITY}: `make infinity-server` creates its virtualenv "
                    "(make test does this)")
    folder = tmp_path_factory.mktemp("served")
    reranker = cross_encoder_folder(folder / "cross-encoder")
    models = [(resolve_model("minilm_l6").path, "minilm-l6"), (reranker, "minilm-ce")]
    try:
        with infinity_server(models, folder / "infinity.log") as url:
            yield {"url": url, "reranker": reranker}
    except ServerFailed as exc:
        pytest.fail(str(exc))


def served(url: str, **kw) -> list[str]:
    return ["embedder=openai_compatible", f"embedder.base_url={url}", "embedder.model=minilm-l6",
            "embedder.max_retries=2", "embedder.price_per_1m_tokens=0.02", "embedder.batch_size=32",
            "embedder.concurrency=2", "embedder.timeout_s=900",  # a local server on 2 busy cores queues requests
            *[f"embedder.{k}={v}" for k, v in kw.items()]]


def test_served_vectors_equal_the_local_embedders(server, data_root, tmp_path):
    corpus = load_dataset(data_root / "scifact").corpus
    texts = [f"{title} {text}" for title, text in zip(corpus.titles[:48], corpus.texts[:48])]
    remote = load_embedder(EmbedderConfig(name="served", model="minilm-l6", backend="openai", base_url=server["url"],
                                          batch_size=16, concurrency=2))
    local = load_embedder(EmbedderConfig(name="minilm_l6", backend="torch", max_tokens=256), Cache(tmp_path))
    a, b = remote.encode(texts), local.encode(texts)
    assert a.shape == b.shape == (48, 384)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.9999
    assert remote.counters.snapshot()["tokens"] > 0 and remote.counters.snapshot()["requests"] == 3


def test_cranfield_through_the_server_scores_as_local_and_the_second_run_is_free(server, data_root, tmp_path):
    """30 Cranfield queries over a 320-document sample holding their judged documents (the whole collection through
    the server: 0.3817 as local, benchmarks/served_embedder.py; a cold encoding of 1,400 abstracts here would take
    minutes): the served model's rankings are the local embedder's with the same weights."""
    base = [f"dataset.root={data_root}", "dataset=cranfield", "retriever=dense", "embedder.progress=false",
            "tracking.enabled=false"]
    sample = judged_sample(load_dataset(data_root / "cranfield", split="test", name="cranfield"), queries=30,
                           docs=320)
    cache = f"cache.dir={tmp_path / 'cache'}"  # the served model's vectors from nothing
    first = run_experiment(compose_config([*base, cache, *served(server["url"])]), dataset=sample)
    local = run_experiment(compose_config([*base, cache, "embedder=minilm_l6", "embedder.backend=torch"]),
                           dataset=sample)
    assert first.evaluation.means["ndcg_at_10"] == pytest.approx(local.evaluation.means["ndcg_at_10"], abs=0.002)
    assert first.evaluation.per_query["ndcg_at_10"] == pytest.approx(local.evaluation.per_query["ndcg_at_10"],
                                                                     abs=0.02)
    timings = first.timings
    tokens = timings["dense_embedding_passage_tokens"]
    assert tokens > 300 and timings["dense_spent_embedding_tokens"] >= tokens
    assert timings["dense_embedding_passage_cost"] == pytest.approx(tokens * 0.02 / 1e6)
    again = run_experiment(compose_config([*base, cache, *served(server["url"]), "eval.depth=120"]), dataset=sample)
    assert again.timings["dense_embeddings_cache_hit"] == 1.0
    # the search of the queries one at a time encodes them live: the only tokens spent
    assert again.timings["dense_spent_embedding_tokens"] < 0.1 * tokens
    assert again.evaluation.means["ndcg_at_10"] == first.evaluation.means["ndcg_at_10"]


def test_served_reranker_scores_as_the_local_cross_encoder(server, data_root, tmp_path):
    dataset = load_dataset(data_root / "scifact")
    pairs = [(q, f"{t} {x}") for q in dataset.queries.texts[:3] for t, x in zip(dataset.corpus.titles[:8],
                                                                                  dataset.corpus.texts[:8])]
    remote = make_scorer(reranker_config({"name": "http", "model": "minilm-ce",
                                          "base_url": server["url"], "batch_size": 4, "max_length": None,
                                          "price_per_1m_tokens": 1.0}), tmp_path / "cache")
    local = make_scorer(reranker_config({"name": "cross_encoder", "model": str(server["reranker"]),
                                         "max_length": None}), tmp_path / "cache")
    (remote_scores, stats), (local_scores, _) = remote.score(pairs), local.score(pairs)
    np.testing.assert_allclose(remote_scores, local_scores, atol=1e-4)
    assert stats["requests"] == 6 and stats["tokens"] > 0
    assert stats["cost"] == pytest.approx(stats["tokens"] / 1e6)
    assert len(remote.identity["model"]["fingerprint"]) == 16
