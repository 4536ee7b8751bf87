"""The embedder's typed config (`embedder=<option>` and a dense retriever's `embedder` node)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrieval_lab.config import check_choice, typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.served import check_served_settings

# the keys of dense.embedders.LOADERS, plus the served backend
BACKENDS = ("torch", "torch_bf16", "onnx", "onnx_int8", "static", "openai")
SERVED_BACKEND = "openai"  # vectors from an OpenAI-compatible POST /embeddings (dense/backends/openai.py)


@dataclass(frozen=True)
class EmbedderConfig:
    name: str = "minilm_l6"          # label of this embedder (runs, tables)
    model: str | None = None         # zoo name, registered name, local folder or HF name; default: `name`
    backend: str | None = None       # torch | torch_bf16 | onnx | onnx_int8 | static; null: the model's default
    query_prefix: str = ""           # prepended to queries (e.g. "query: " for E5)
    passage_prefix: str = ""         # prepended to passages (e.g. "passage: ")
    normalize: bool = True           # unit-length rows: inner product = cosine
    batch_size: int = 32
    max_tokens: int | None = None    # truncation; null: the model's own limit
    sort_by_length: bool = True      # batch passages of similar length together (less padding)
    threads: int | None = None       # intra-op threads for torch / onnxruntime; null: library default
    query_threads: int | None = 1    # torch / onnxruntime threads for one-query encodes (latency); null: as
    #                                  `threads`. One thread is immune to oversubscription: 68 ms vs 1.9 s per
    #                                  query here with 2 torch threads while other processes loaded the 2 cores
    progress: bool | None = None     # progress bars; null: on unless $CI is set
    lowercase: bool = False          # lower-case queries and passages first: for case-sensitive models (WordLlama)
    #                                  when queries and documents differ in case
    # backend openai (embedder=openai_compatible): a served model, dense/backends/openai.py
    base_url: str | None = None      # e.g. https://api.openai.com/v1 or http://127.0.0.1:7997 (POST <base_url>/embeddings)
    api_key_env: str | None = None   # environment variable holding the API key (Bearer); null: no key
    dimensions: int | None = None    # asked of models that take it (text-embedding-3-*); null: the model's own
    concurrency: int = 4             # requests in flight
    max_retries: int = 5             # retries of 429 / 5xx / timeouts, with exponential backoff
    retry_backoff_s: float = 1.0     # first wait, doubled per retry (a Retry-After header wins)
    timeout_s: float = 60.0          # seconds one request may take
    price_per_1m_tokens: float | None = None  # cost logged per run (embedding_cost); null: not priced

    @property
    def served(self) -> bool:
        return self.backend == SERVED_BACKEND

    @property
    def model_ref(self) -> str:
        return self.model or self.name

    def validate(self, prefix: str = "embedder") -> None:
        check_choice(f"{prefix}.backend", self.backend, BACKENDS, nullable=True)
        if self.batch_size <= 0:
            raise ConfigError(f"{prefix}.batch_size", f"must be a positive integer, got {self.batch_size}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ConfigError(f"{prefix}.max_tokens", f"must be positive or null, got {self.max_tokens}")
        if self.query_threads is not None and self.query_threads <= 0:
            raise ConfigError(f"{prefix}.query_threads", f"must be positive or null, got {self.query_threads}")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"{prefix}.threads", f"must be positive or null, got {self.threads}")
        if self.served:
            self._validate_served(prefix)
        elif self.base_url is not None:
            raise ConfigError(f"{prefix}.base_url", f"set, but {prefix}.backend is {self.backend}",
                              f"for a served model use embedder=openai_compatible (backend {SERVED_BACKEND})")
        if self.name == "hf" and not self.model:
            raise ConfigError(f"{prefix}.model", "the hf embedder needs a model",
                              f"set {prefix}.model=<Hugging Face name or local folder>, e.g. BAAI/bge-small-en-v1.5")
        if not self.model_ref:
            raise ConfigError(f"{prefix}.model", "empty model name", "use minilm_l6, minilm_l3, wordllama, a "
                              "local folder or a Hugging Face name")


    def _validate_served(self, prefix: str) -> None:
        if not self.base_url or not re.match(r"^https?://[^/\s]+", self.base_url):
            raise ConfigError(f"{prefix}.base_url", f"a served embedder needs an http(s) URL, got {self.base_url!r}",
                              f"set {prefix}.base_url=https://api.openai.com/v1 (or your server, e.g. "
                              "http://127.0.0.1:7997)")
        if not self.model:
            raise ConfigError(f"{prefix}.model", "a served embedder needs the model name the server knows",
                              f"set {prefix}.model=text-embedding-3-small (or the name your server serves)")
        for key in ("concurrency", "dimensions"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{key}", f"must be a positive integer, got {value}")
        check_served_settings(self, prefix)


def embedder_config(node: Any, prefix: str = "embedder") -> EmbedderConfig:
    config = typed(EmbedderConfig, node, prefix)
    config.validate(prefix)
    return config
