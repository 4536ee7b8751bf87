"""Embedders: `load_embedder(EmbedderConfig) -> Embedder`; `Embedder.encode(texts, kind="passage"|"query")` returns
float32 rows.

The model comes from the model store (`models.resolve.resolve_model`: a registered name, the zoo, a local folder, a
Hugging Face name already in the local HF cache). The backend (`EmbedderConfig.backend`, or the model's default) is
picked from `LOADERS`, one module each under `dense/backends/`: `torch` (sentence-transformers as is), `torch_bf16`
(bfloat16 autocast), `onnx` (the transformer exported locally with torch.onnx.export and run with onnxruntime),
`onnx_int8` (the same, dynamically quantized to int8), `static` (static models such as WordLlama), `openai` (a served
model, no local files). ONNX files are cache entries (stage `onnx_models`) keyed on the weights' sha256, so they are
exported once and shared like any artifact.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from retrieval_lab.cache import Cache
from retrieval_lab.dense.backends import onnx, sentence_transformers, static
from retrieval_lab.dense.backends.base import Embedder, embedder_identity
from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.errors import ConfigError
from retrieval_lab.models.resolve import resolve_model
from retrieval_lab.models.tokenizer import spec_tokenizer

log = logging.getLogger(__name__)

# backend name -> load(config, spec, backend, max_tokens, cache) -> Embedder, for models with local files
LOADERS: dict[str, Callable[..., Embedder]] = {
    "torch": sentence_transformers.load,
    "torch_bf16": sentence_transformers.load,
    "onnx": onnx.load,
    "onnx_int8": onnx.load,
    "static": static.load,
}
# the backends each kind of model runs on
KIND_BACKENDS = {"sentence_transformers": ("torch", "torch_bf16", "onnx", "onnx_int8"),
                 "onnx_graph": ("onnx", "onnx_int8"), "static": ("static",)}


def config_identity(config: EmbedderConfig, root: str | Path | None = None, key: str = "embedder") -> dict:
    """The identity of the vectors `config` produces: weights by hash, or a served model by name and fingerprint
    (one request to the server, once per process)."""
    if config.served:
        from retrieval_lab.dense.backends.openai import served_identity

        return served_identity(config, key)
    return embedder_identity(config, resolve_model(config.model_ref, root))


def load_tokenizer(config: EmbedderConfig, root: str | Path | None = None):
    """The embedder's Hugging Face tokenizer without loading the model (to count tokens); None if it has none."""
    if config.served:  # the server tokenizes
        return None
    return spec_tokenizer(resolve_model(config.model_ref, root))


def load_embedder(config: EmbedderConfig, cache=None, key: str = "embedder") -> Embedder:
    """Load the model (once per call: keep the Embedder). `cache` stores ONNX exports (default cache if None)."""
    if config.served:
        from retrieval_lab.dense.backends.openai import OpenAICompatibleEmbedder

        return OpenAICompatibleEmbedder(config, key)
    cache = cache if cache is not None else Cache()
    spec = resolve_model(config.model_ref, cache.root)
    backend = config.backend or spec.default_backend
    max_tokens = config.max_tokens if config.max_tokens is not None else spec.max_tokens
    allowed = KIND_BACKENDS.get(spec.kind, ())
    if backend not in allowed:
        raise ConfigError("embedder.backend", f"model '{spec.ref}' ({spec.kind}) has no backend '{backend}'",
                          f"use one of {', '.join(allowed) or '(none: not an embedding model)'}")
    t0 = time.perf_counter()
    embedder = LOADERS[backend](config, spec, backend, max_tokens, cache)
    log.info("loaded embedder %s (%s, %s) in %.1f s", config.name, spec.ref, backend, time.perf_counter() - t0)
    return embedder
