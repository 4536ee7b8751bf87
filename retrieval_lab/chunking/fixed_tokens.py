"""`fixed_tokens`: windows of `size` tokens, `overlap` tokens shared between neighbours, cut on token offsets."""
from __future__ import annotations

from dataclasses import dataclass

from retrieval_lab.chunking.base import ChunkerConfig, Span, windows
from retrieval_lab.errors import ConfigError


@dataclass
class FixedTokensConfig(ChunkerConfig):
    size: int = 256
    overlap: int = 32

    def validate(self, prefix: str = "chunker") -> None:
        super().validate(prefix)
        if self.size <= 0:
            raise ConfigError(f"{prefix}.size", f"must be a positive number of tokens, got {self.size}")
        if self.overlap < 0:
            raise ConfigError(f"{prefix}.overlap", f"must be >= 0, got {self.overlap}")
        if self.overlap >= self.size:
            raise ConfigError(f"{prefix}.overlap", f"{self.overlap} must be below size={self.size}",
                              f"e.g. chunker.overlap={self.size // 8}")


class FixedTokensChunker:
    Config = FixedTokensConfig  # its typed config (the registry reads the `chunker` node into it)

    def __init__(self, config: FixedTokensConfig, tokens, encoder=None):
        self.config, self.tokens = config, tokens

    def chunk(self, text: str) -> list[Span]:
        return windows(self.tokens.spans(text), self.config.size, self.config.size - self.config.overlap)
