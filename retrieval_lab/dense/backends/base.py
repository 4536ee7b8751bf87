"""What every embedder backend shares: the encode loop (prefixes, lower-casing, length-sorted batches, progress,
normalization) and the identity of the vectors. A backend subclasses `Embedder` and encodes one batch."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.dense.progress import progress_bar
from retrieval_lab.models.spec import ModelSpec


class Embedder:
    """Shared encode loop: prefixes, length-sorted batches, progress, normalization. Subclasses encode a batch."""

    counters = None  # a served backend's requests, retries and billed tokens (`served.Counters`); local: none

    def __init__(self, config: EmbedderConfig, spec: ModelSpec, backend: str, max_tokens: int | None):
        self.config = config
        self.spec = spec
        self.backend = backend
        self.max_tokens = max_tokens
        self.dim: int = 0

    @property
    def identity(self) -> dict:
        return embedder_identity(self.config, self.spec)

    @property
    def tokenizer(self):
        """A Hugging Face tokenizer (to count tokens), or None."""
        return None

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _encode_many(self, batches):
        """Vectors of each batch, in order (a served model overlaps its requests)."""
        return map(self._encode_batch, batches)

    def _lengths(self, texts) -> np.ndarray:
        return np.fromiter(map(len, texts), dtype=np.int64)

    def encode(self, texts: Sequence[str], kind: str = "passage", progress: bool | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Vectors of `texts` (float32, one row each), written into `out` when given (a memory-mapped .npy the
        cache renames into place): texts are prepared (lower-cased, prefixed), encoded and normalized a batch at a
        time, so neither the texts nor the vectors are ever held twice."""
        if kind not in ("passage", "query"):
            raise ValueError(f"kind must be 'passage' or 'query', got {kind!r}")
        prefix = self.config.passage_prefix if kind == "passage" else self.config.query_prefix
        lowercase = self.config.lowercase

        def prepare(text: str) -> str:
            text = text.lower() if lowercase else text
            return f"{prefix}{text}" if prefix else text

        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32) if out is None else out
        if n == 0:
            return out
        order = (np.argsort(-self._lengths(map(prepare, texts)), kind="stable")
                 if self.config.sort_by_length and n > 1 else np.arange(n))
        bs = self.config.batch_size
        show = progress if progress is not None else (self.config.progress if n > bs else False)
        batches = [order[start:start + bs] for start in range(0, n, bs)]
        prepared = ([prepare(texts[i]) for i in rows.tolist()] for rows in batches)  # read batch by batch
        with progress_bar(n, f"encode {kind}s {self.config.name} [{self.backend}]", show, unit=f"{kind}s") as bar:
            for rows, vectors in zip(batches, self._encode_many(prepared)):
                vectors = np.asarray(vectors, dtype=np.float32)
                if self.config.normalize:  # row by row, as over the whole array
                    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
                out[rows] = vectors
                bar.update(len(rows))
        return out


def embedder_identity(config: EmbedderConfig, spec: ModelSpec) -> dict:
    """Everything that changes the vectors: weights (by hash), backend, prefixes, normalization, max tokens."""
    backend = config.backend or spec.default_backend
    max_tokens = config.max_tokens if config.max_tokens is not None else spec.max_tokens
    identity = {"model": spec.identity(), "backend": backend, "query_prefix": config.query_prefix,
                "passage_prefix": config.passage_prefix, "normalize": config.normalize, "max_tokens": max_tokens,
                "pooling": spec.extra.get("pooling", "model")}
    if config.lowercase:  # only when on, so the keys of embeddings computed before the option existed still hold
        identity["lowercase"] = True
    return identity
