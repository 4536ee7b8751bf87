"""Backend `static`: static token embeddings averaged over the text (WordLlama), numpy only."""
from __future__ import annotations

import numpy as np

from retrieval_lab.dense.backends.base import Embedder


class StaticEmbedder(Embedder):
    """Static token embeddings averaged over the text (WordLlama): numpy only, thousands of passages/s."""
    def __init__(self, config, spec, backend, max_tokens):
        super().__init__(config, spec, backend, max_tokens)
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.weights = load_file(str(spec.path))["embedding.weight"].astype(np.float32)
        self.raw_tokenizer = Tokenizer.from_file(str(spec.extra["tokenizer"]))
        self.dim = self.weights.shape[1]
        self._hf_tokenizer = None

    @property
    def tokenizer(self):
        if self._hf_tokenizer is None:
            from transformers import PreTrainedTokenizerFast

            self._hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=self.raw_tokenizer)
        return self._hf_tokenizer

    def _encode_batch(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, enc in enumerate(self.raw_tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = enc.ids[:self.max_tokens] if self.max_tokens else enc.ids
            if ids:
                out[row] = self.weights[ids].mean(axis=0)
        return out


def load(config, spec, backend, max_tokens, cache) -> StaticEmbedder:
    return StaticEmbedder(config, spec, backend, max_tokens)
