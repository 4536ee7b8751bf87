"""Backends `torch` and `torch_bf16`: sentence-transformers as is (fp32, or bfloat16 autocast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval_lab.dense.backends.base import Embedder
from retrieval_lab.errors import ModelNotFoundError
from retrieval_lab.models.resolve import resolve_model
from retrieval_lab.models.spec import ModelSpec


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on torch (fp32, or bf16 autocast)."""
    def __init__(self, config, spec, backend, max_tokens, model=None):
        super().__init__(config, spec, backend, max_tokens)
        _set_threads(config.threads)
        self.model = model if model is not None else load_sentence_transformer(spec)
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens
        # Normalization is this config's choice (in numpy, as for every backend), not the folder's module.
        last = list(self.model._modules)[-1]
        if type(self.model._modules[last]).__name__ == "Normalize" and len(self.model._modules) > 1:
            self.model._modules.pop(last)
        self.max_tokens = self.model.max_seq_length
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def _encode_batch(self, texts):
        import torch

        kwargs = dict(batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True,
                      normalize_embeddings=False)
        threads = torch.get_num_threads()
        few = self.config.query_threads if len(texts) <= 2 and self.config.query_threads else None
        if few and few != threads:
            torch.set_num_threads(few)
        try:
            if self.backend == "torch_bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return self.model.encode(texts, **kwargs).astype(np.float32)
            return self.model.encode(texts, **kwargs).astype(np.float32)
        finally:
            if few and few != threads:
                torch.set_num_threads(threads)


def load_sentence_transformer(spec_or_ref: ModelSpec | str, root: str | Path | None = None, **kwargs):
    """The underlying `SentenceTransformer` of a zoo/registered/local/HF model (for fine-tuning): torch, CPU."""
    spec = spec_or_ref if isinstance(spec_or_ref, ModelSpec) else resolve_model(spec_or_ref, root)
    if spec.kind != "sentence_transformers":
        raise ModelNotFoundError(f"model '{spec.ref}' is a {spec.kind} model, not a sentence-transformers "
                                 "bi-encoder; it cannot be loaded with SentenceTransformer")
    from sentence_transformers import SentenceTransformer

    kwargs.setdefault("device", "cpu")
    return SentenceTransformer(str(spec.path), local_files_only=True, **kwargs)


def load(config, spec, backend, max_tokens, cache) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(config, spec, backend, max_tokens)
