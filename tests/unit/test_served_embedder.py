"""embedder=openai_compatible against a scripted stub server: retries on 429 / 500 / timeouts, clear errors on a wrong
dimension, an empty embedding or a refused key, order kept under concurrency, billed tokens, and the fingerprint in
the cache key."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.dense import embed_texts
from retrieval_lab.dense.backends import openai as served
from retrieval_lab.dense.config import EmbedderConfig, embedder_config
from retrieval_lab.dense.embedders import config_identity, load_embedder
from retrieval_lab.errors import ConfigError
from retrieval_lab.served import ServedModelError
from tests.unit.served_stub import Stub, vector

TEXTS = [f"passage number {i} about {'cells ' * (i % 5)}" for i in range(23)]


@pytest.fixture()
def stub():
    server = Stub(dim=8)
    served._PROBES.clear()  # each test's server is new: probe it afresh
    yield server
    server.close()


def config(stub: Stub, **kw) -> EmbedderConfig:
    base = dict(name="served", model="stub-embed", backend="openai", base_url=stub.url, batch_size=5,
                concurrency=3, max_retries=3, retry_backoff_s=0.01, timeout_s=2.0, normalize=False)
    return EmbedderConfig(**{**base, **kw})


def expected(texts, seed="model-a"):
    return np.array([vector(t, 8, seed) for t in texts], dtype=np.float32)


def test_vectors_come_back_in_input_order_under_concurrency(stub):
    stub.faults = [{}, {"shuffle": True}, {"sleep": 0.2}]  # an answer listed backwards; a slow request among others
    embedder = load_embedder(config(stub))
    got = embedder.encode(TEXTS)
    np.testing.assert_allclose(got, expected(TEXTS), rtol=1e-6)
    assert embedder.counters.snapshot()["requests"] == 5  # 23 texts in batches of 5
    assert embedder.counters.snapshot()["tokens"] == sum(len(t.split()) for t in TEXTS)


def test_429_and_500_are_retried_with_backoff(stub):
    embedder = load_embedder(config(stub, concurrency=1))
    stub.faults = [{"status": 429, "headers": {"Retry-After": "0.05"}}, {"status": 500}, {"status": 503}]
    got = embedder.encode(TEXTS[:5])
    np.testing.assert_allclose(got, expected(TEXTS[:5]), rtol=1e-6)
    assert embedder.counters.snapshot()["retries"] == 3


def test_a_timeout_is_retried_then_reported(stub):
    embedder = load_embedder(config(stub, concurrency=1, timeout_s=0.3, max_retries=1))
    stub.faults = [{"sleep": 0.6}]  # one slow answer: retried, then fine
    np.testing.assert_allclose(embedder.encode(TEXTS[:3]), expected(TEXTS[:3]), rtol=1e-6)
    stub.faults = [{"sleep": 0.6}, {"sleep": 0.6}]
    with pytest.raises(ServedModelError, match=r"failed 2 times; last: no answer within 0.3 s \(embedder.timeout_s\)"):
        embedder.encode(TEXTS[:3])


def test_persistent_500_names_url_and_fix(stub):
    embedder = load_embedder(config(stub, max_retries=2))
    stub.faults = [{"status": 500, "message": "model overloaded"}] * 3
    with pytest.raises(ServedModelError) as err:
        embedder.encode(TEXTS[:2])
    text = str(err.value)
    assert f"{stub.url}/embeddings failed 3 times" in text and "model overloaded" in text
    assert "embedder.max_retries" in text


def test_wrong_dimension_and_empty_embedding_are_errors(stub):
    embedder = load_embedder(config(stub, concurrency=1))
    stub.faults = [{"dim": 5}]
    with pytest.raises(ServedModelError, match="an embedding of 5 dimensions, expected 8"):
        embedder.encode(TEXTS[:3])
    stub.faults = [{"empty": True}]
    with pytest.raises(ServedModelError, match="the embedding of text 2 of the batch is empty"):
        embedder.encode(TEXTS[:3])


def test_asked_dimensions_the_server_ignores_are_an_error(stub):
    with pytest.raises(ServedModelError,
                       match=r"expected 4 \(embedder.dimensions=4\).*\n  fix: set embedder.dimensions"):
        load_embedder(config(stub, dimensions=4))


def test_refused_key_and_missing_key_variable(stub, monkeypatch):
    monkeypatch.delenv("STUB_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"embedder.api_key_env.*STUB_KEY is not set.*\n  fix: export STUB_KEY="):
        load_embedder(config(stub, api_key_env="STUB_KEY"))
    monkeypatch.setenv("STUB_KEY", "secret")
    embedder = load_embedder(config(stub, api_key_env="STUB_KEY", concurrency=1))
    assert stub.requests[-1]["auth"] == "Bearer secret"
    stub.faults = [{"status": 401, "message": "bad key"}]
    with pytest.raises(ServedModelError, match=r"HTTP 401: .*bad key.*\n  fix: check the key in \$STUB_KEY"):
        embedder.encode(TEXTS[:2])
    assert stub.faults == []  # not retried


def test_config_errors_name_the_key():
    node = {"name": "x", "backend": "openai", "model": "m", "base_url": "localhost:7997"}
    with pytest.raises(ConfigError, match="embedder.base_url.*http"):
        embedder_config(node)
    with pytest.raises(ConfigError, match="embedder.model"):
        embedder_config({**node, "base_url": "http://127.0.0.1:1", "model": None})
    with pytest.raises(ConfigError, match="embedder.concurrency"):
        embedder_config({**node, "base_url": "http://127.0.0.1:1", "concurrency": 0})
    with pytest.raises(ConfigError, match="embedder.base_url.*backend is onnx"):
        embedder_config({"name": "minilm_l6", "backend": "onnx", "base_url": "http://127.0.0.1:1"})


def test_fingerprint_keys_the_cache_and_a_swapped_model_misses(stub, tmp_path):
    cache = Cache(tmp_path / "cache")
    cfg = config(stub)
    identity = config_identity(cfg)
    assert identity["model"]["name"] == "stub-embed" and len(identity["model"]["fingerprint"]) == 16
    vectors, meta, hit = embed_texts(None, cfg, TEXTS, "passage", cache, load=lambda: load_embedder(cfg))
    assert not hit and meta["tokens"] == sum(len(t.split()) for t in TEXTS) and meta["requests"] == 5
    requests_before = len(stub.requests)
    again, _, hit = embed_texts(None, cfg, TEXTS, "passage", cache, load=lambda: load_embedder(cfg))
    assert hit and len(stub.requests) == requests_before + 0  # identity memoized: not even a probe
    np.testing.assert_array_equal(np.asarray(again), np.asarray(vectors))

    stub.seed = "model-b"  # another model behind the same name and URL, noticed by a new process's probe
    served._PROBES.clear()
    swapped = config_identity(cfg)
    assert swapped["model"]["fingerprint"] != identity["model"]["fingerprint"]
    fresh, _, hit = embed_texts(None, cfg, TEXTS, "passage", cache, load=lambda: load_embedder(cfg))
    assert not hit
    np.testing.assert_allclose(np.asarray(fresh), expected(TEXTS, "model-b"), rtol=1e-6)


def test_fingerprint_ignores_the_url(stub):
    first = config_identity(config(stub))
    other = Stub(dim=8)
    try:
        served._PROBES.clear()
        assert config_identity(config(other)) == first  # same model elsewhere: same cache entries
    finally:
        other.close()


def test_evaluate_reports_a_fingerprint_changed_since_the_export(stub, tmp_path):
    from retrieval_lab.pipeline.export import fingerprint_changes, stage_identities
    from retrieval_lab.config import compose_config

    cfg = compose_config(["retriever=dense", "embedder=openai_compatible", f"embedder.base_url={stub.url}",
                          "embedder.model=stub-embed", f"cache.dir={tmp_path / 'cache'}"])
    export = {"models": stage_identities(cfg)}
    assert fingerprint_changes(export, cfg) == []
    stub.seed = "model-b"
    served._PROBES.clear()
    changes = fingerprint_changes(export, cfg)
    assert [c.key for c in changes] == ["retriever served model 'stub-embed' fingerprint"]
    assert changes[0].before == export["models"][0]["embedder"]["model"]["fingerprint"] != changes[0].after


def test_a_run_logs_tokens_and_cost_and_a_replayed_run_spends_nothing(stub, tmp_path):
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment
    from tests.integration.sweep_util import tiny_beir

    folder = tiny_beir(tmp_path / "tiny", docs=40, queries=8)
    cfg = compose_config([f"dataset.path={folder}", "retriever=dense", "embedder=openai_compatible",
                          f"embedder.base_url={stub.url}", "embedder.model=stub-embed",
                          "embedder.price_per_1m_tokens=3.0", f"cache.dir={tmp_path / 'cache'}",
                          "tracking.enabled=false", "eval.k=[1,5]", "eval.depth=5"])
    first = run_experiment(cfg).timings
    tokens = first["dense_embedding_passage_tokens"]
    assert tokens > 0 and first["dense_embedding_passage_cost"] == pytest.approx(tokens * 3.0 / 1e6)
    assert first["dense_spent_embedding_tokens"] > tokens  # the passages and the queries
    assert first["dense_spent_embedding_cost"] == pytest.approx(first["dense_spent_embedding_tokens"] * 3.0 / 1e6)
    sent = len(stub.requests)
    again = run_experiment(cfg).timings
    assert again["dense_cache_hit"] == 1.0 and len(stub.requests) == sent
    assert again["dense_spent_embedding_tokens"] == 0 and again["dense_spent_embedding_cost"] == 0
    assert again["dense_embedding_passage_tokens"] == tokens  # what the vectors cost, still on record
