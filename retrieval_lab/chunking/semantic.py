"""`semantic`: break between adjacent sentences whose embedding similarity drops, then cap chunks at `max_size`.

A breakpoint goes where the cosine similarity of neighbouring sentences is below `threshold`, or (when threshold
is null) where the distance 1 - similarity is above the document's `percentile`-th distance (as langchain's
SemanticChunker). Chunks longer than `max_size` tokens are split again at sentence boundaries. Sentences are
embedded with WordLlama's static 256-d embeddings (shipped in the `wordllama` wheel, loaded without network:
token vectors averaged and normalised, as WordLlama's own `embed` does): ~3,000 sentences/s on one core.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval_lab.chunking.base import ChunkerConfig, Span
from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError

ENCODERS = ("wordllama",)


@dataclass
class SemanticConfig(ChunkerConfig):
    threshold: float | None = None  # break where adjacent-sentence cosine similarity < threshold
    percentile: float = 80.0  # used when threshold is null: break at distances above this percentile
    max_size: int = 256  # tokens; longer chunks are split at sentence boundaries
    encoder: str = "wordllama"

    def validate(self, prefix: str = "chunker") -> None:
        super().validate(prefix)
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"{prefix}.threshold", f"a cosine similarity within [-1, 1], got {self.threshold}")
        if not 0.0 <= self.percentile <= 100.0:
            raise ConfigError(f"{prefix}.percentile", f"must be within [0, 100], got {self.percentile}")
        if self.max_size <= 0:
            raise ConfigError(f"{prefix}.max_size", f"must be a positive number of tokens, got {self.max_size}")
        check_choice(f"{prefix}.encoder", self.encoder, ENCODERS)


class StaticEncoder:
    """WordLlama l2_supercat 256-d: mean of token vectors, L2-normalised (numpy only)."""

    def __init__(self):
        import wordllama
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = Path(wordllama.__file__).parent
        weights = root / "weights" / "l2_supercat_256.safetensors"
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.matrix = load_file(str(weights))["embedding.weight"].astype(np.float32)
        self.identity = {"name": "wordllama-l2_supercat_256",
                         "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.matrix.shape[1]), dtype=np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            if enc.ids:
                out[i] = self.matrix[enc.ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@functools.lru_cache(maxsize=2)
def load_encoder(name: str) -> StaticEncoder:
    return StaticEncoder()


def breakpoints(similarities: np.ndarray, threshold: float | None, percentile: float) -> np.ndarray:
    """Indices i where a chunk ends after sentence i (similarity between sentence i and i+1 dropped)."""
    if len(similarities) == 0:
        return np.zeros(0, dtype=np.int64)
    if threshold is not None:
        return np.flatnonzero(similarities < threshold)
    distances = 1.0 - similarities
    return np.flatnonzero(distances > np.percentile(distances, percentile))


class SemanticChunker:
    Config = SemanticConfig  # its typed config (the registry reads the `chunker` node into it)

    def __init__(self, config: SemanticConfig, tokens, encoder=None):
        self.config, self.tokens = config, tokens
        self.encoder = encoder or load_encoder(config.encoder)

    def chunk(self, text: str) -> list[Span]:
        sents = sentence_spans(text)
        if len(sents) <= 1:
            return sents
        vectors = self.encoder.encode([text[a:b] for a, b in sents])
        sims = (vectors[:-1] * vectors[1:]).sum(axis=1)
        cuts = set(breakpoints(sims, self.config.threshold, self.config.percentile).tolist())
        counts = self.tokens.count_batch([text[a:b] for a, b in sents])
        out, start, size = [], 0, 0
        for i, n in enumerate(counts):
            if i > start and size + n > self.config.max_size:  # cap: close the chunk before sentence i
                out.append((sents[start][0], sents[i - 1][1]))
                start, size = i, 0
            size += n
            if i in cuts or i == len(sents) - 1:
                out.append((sents[start][0], sents[i][1]))
                start, size = i + 1, 0
        return out
