"""Embedders: offline loading, prefixes, normalization, identities, model-not-found, ONNX (the store itself:
test_model_store.py)."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.dense.backends.base import embedder_identity
from retrieval_lab.dense.config import EmbedderConfig, embedder_config
from retrieval_lab.dense.embedders import load_embedder
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.models.resolve import resolve_model

TEXTS = ["Vitamin D deficiency is linked to bone fractures.",
         "The mitochondria is the powerhouse of the cell.",
         "A short one."]


@pytest.fixture(scope="module")
def wordllama():
    return load_embedder(EmbedderConfig(name="wordllama", progress=False), Cache(enabled=False))


def test_wordllama_loads_offline_and_normalizes(wordllama):
    vectors = wordllama.encode(TEXTS)
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert wordllama.tokenizer is not None and len(wordllama.tokenizer("hello world")["input_ids"]) > 0
    assert wordllama.max_tokens is None


def test_normalize_false_keeps_raw_norms():
    raw = load_embedder(EmbedderConfig(name="wordllama", normalize=False, progress=False), Cache(enabled=False))
    norms = np.linalg.norm(raw.encode(TEXTS), axis=1)
    assert not np.allclose(norms, 1.0)
    unit = load_embedder(EmbedderConfig(name="wordllama", progress=False), Cache(enabled=False)).encode(TEXTS)
    np.testing.assert_allclose(raw.encode(TEXTS) / norms[:, None], unit, rtol=1e-5, atol=1e-6)


def test_prefixes_apply_per_kind(wordllama):
    prefixed = load_embedder(EmbedderConfig(name="wordllama", query_prefix="query: ", passage_prefix="passage: ",
                                            progress=False), Cache(enabled=False))
    np.testing.assert_allclose(prefixed.encode(TEXTS, kind="query"),
                               wordllama.encode([f"query: {t}" for t in TEXTS]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prefixed.encode(TEXTS, kind="passage"),
                               wordllama.encode([f"passage: {t}" for t in TEXTS]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(prefixed.encode(TEXTS, kind="query"), prefixed.encode(TEXTS, kind="passage"))
    with pytest.raises(ValueError):
        wordllama.encode(TEXTS, kind="document")


def test_length_sorting_does_not_change_vectors(wordllama):
    unsorted = load_embedder(EmbedderConfig(name="wordllama", sort_by_length=False, batch_size=2, progress=False),
                             Cache(enabled=False))
    np.testing.assert_allclose(unsorted.encode(TEXTS), wordllama.encode(TEXTS), rtol=1e-5, atol=1e-6)
    assert wordllama.encode([]).shape == (0, 256)


def test_identity_changes_with_every_setting():
    spec = resolve_model("wordllama")
    base = embedder_identity(EmbedderConfig(name="wordllama"), spec)
    assert len(base["model"]["weights_sha256"]) == 64
    for change in ({"query_prefix": "q: "}, {"passage_prefix": "p: "}, {"normalize": False}, {"max_tokens": 64}):
        assert embedder_identity(EmbedderConfig(name="wordllama", **change), spec) != base, change
    # batch size, progress and sorting do not change the vectors: same identity, shared cache entries
    assert embedder_identity(EmbedderConfig(name="wordllama", batch_size=7, progress=False,
                                            sort_by_length=False), spec) == base
    assert "/" not in str(base["model"]["ref"])  # no machine paths in cache keys


def test_unknown_model_offline_says_network_is_needed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="network is needed"):
        resolve_model("nobody/no-such-model-xyz")
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        resolve_model("./no/such/folder")


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="embedder.backend"):
        embedder_config({"name": "minilm_l6", "backend": "cuda"})
    with pytest.raises(ConfigError, match="embedder.batchsize"):
        embedder_config({"name": "minilm_l6", "batchsize": 8})
    with pytest.raises(ConfigError, match="embedder.batch_size"):
        embedder_config({"name": "minilm_l6", "batch_size": 0})
    with pytest.raises(ConfigError, match="embedder.query_threads"):
        embedder_config({"name": "minilm_l6", "query_threads": 0})
    with pytest.raises(ConfigError, match="embedder.model"):
        embedder_config({"name": "hf", "model": None})
    with pytest.raises(ConfigError, match="has no backend 'torch'"):
        load_embedder(EmbedderConfig(name="wordllama", backend="torch"), Cache(enabled=False))


def test_minilm_l3_onnx_matches_the_packaged_sentence_embedding():
    """Our pooling over the graph's token output equals the graph's own pooled output (parity with onnxruntime)."""
    import onnxruntime as ort

    embedder = load_embedder(EmbedderConfig(name="minilm_l3", normalize=False, progress=False),
                             Cache(enabled=False))
    assert embedder.max_tokens == 128 and embedder.tokenizer is not None
    batch = embedder.tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="np")
    session = ort.InferenceSession(str(resolve_model("minilm_l3").path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input_ids": batch["input_ids"].astype(np.int64),
                                 "attention_mask": batch["attention_mask"].astype(np.int64)})
    pooled = next(o for o in outputs if o.ndim == 2 and o.shape[1] == 384)
    np.testing.assert_allclose(embedder.encode(TEXTS), pooled, rtol=1e-4, atol=1e-5)


def test_minilm_l6_onnx_export_matches_torch():
    """The local export (keyword-input wrapper) gives the torch vectors; the ONNX file becomes a cache entry."""
    cache = Cache()  # the shared test cache: the export happens once
    torch_vecs = load_embedder(EmbedderConfig(name="minilm_l6", backend="torch", progress=False), cache).encode(TEXTS)
    onnx_vecs = load_embedder(EmbedderConfig(name="minilm_l6", backend="onnx", progress=False),
                              cache).encode(TEXTS)
    assert (torch_vecs * onnx_vecs).sum(1).min() > 0.9999
    # normalize=false drops the folder's own Normalize module: raw mean-pooled vectors, same directions
    raw = load_embedder(EmbedderConfig(name="minilm_l6", backend="torch", normalize=False, progress=False),
                        cache).encode(TEXTS)
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    np.testing.assert_allclose(raw / norms[:, None], torch_vecs, atol=1e-5)
    assert cache.entries("onnx_models")


def test_onnx_one_query_encodes_on_its_own_session_and_gives_the_batch_vectors():
    """`query_threads` holds for ONNX too: a one-query encode (a live search) runs on a session of its own, and an
    fp32 graph gives every text the vector it gets inside a batch (what lets an export rank as its evaluation)."""
    embedder = load_embedder(EmbedderConfig(name="minilm_l6", backend="onnx", query_threads=1, progress=False),
                             Cache())
    batch = embedder.encode(TEXTS)
    assert embedder._few_session is None
    alone = np.vstack([embedder.encode([text]) for text in TEXTS])
    assert embedder._few_session is not None and embedder._few_session is not embedder.session
    np.testing.assert_allclose(alone, batch, atol=1e-5)


def test_models_inside_a_dot_cache_folder_are_hashed_and_empty_folders_refused(tmp_path):
    import shutil

    from retrieval_lab.models.hashing import weights_sha256

    source = resolve_model("minilm_l3").path
    inside = tmp_path / ".cache" / "models" / "m"
    inside.mkdir(parents=True)
    shutil.copy(source, inside / "model.onnx")
    import hashlib

    assert weights_sha256(inside) != hashlib.sha256(b"").hexdigest()  # the file under .cache/ was hashed
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model files"):
        weights_sha256(tmp_path / "empty")
