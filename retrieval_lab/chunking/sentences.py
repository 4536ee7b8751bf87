"""Sentence boundaries with exact offsets, and the `sentences` chunker (n sentences per chunk, a stride).

The splitter is a rule set tuned on SciFact, whose BEIR text is `" ".join(sentence.strip() for sentence in
abstract)` of the original sentence list: a boundary is a single space after `.`, `?` or `!` (not after a common
abbreviation) followed by an upper-case letter, a digit, an opening bracket or quote, or a lower-case word holding an
upper-case letter or digit (`mRNA`, `p53`); a line break always ends a sentence (SciFact has none). Checked on SciFact's rationales (1,391 gold sentence indices, train and
test): 1 index out of range in 5,183 abstracts, and the word overlap with the claim peaks at the gold index
(0.64 vs 0.38 / 0.33 one sentence before / after); treating section headings (`BACKGROUND`) or multiple spaces as
boundaries made both worse (see tests/integration/test_chunking_real.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval_lab.chunking.base import ChunkerConfig, Span, trimmed, windows
from retrieval_lab.errors import ConfigError

_ABBR = "".join(rf"(?<!\b{a})" for a in (r"e\.g\.", r"i\.e\.", r"al\.", r"vs\.", r"Fig\.", r"approx\.", r"ca\.",
                                           r"cf\.", r"No\.", r"Dr\.", r"St\."))
BOUNDARY = re.compile(rf"(?<=[.?!]){_ABBR} (?=[A-Z0-9(\[\"'])|(?<=[.?!]){_ABBR} (?=[a-z]+[A-Z0-9])|[ \t]*\n\s*")


def sentence_spans(text: str) -> list[Span]:
    """(start, end) of each sentence; separators (the joining space) belong to no sentence; empty text -> []."""
    spans, start = [], 0
    for m in BOUNDARY.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return trimmed(text, spans)  # so every span starts and ends on a visible character


@dataclass
class SentencesConfig(ChunkerConfig):
    size: int = 3  # sentences per chunk
    stride: int | None = None  # sentences between chunk starts; null = size (no overlap)

    def validate(self, prefix: str = "chunker") -> None:
        super().validate(prefix)
        if self.size <= 0:
            raise ConfigError(f"{prefix}.size", f"must be a positive number of sentences, got {self.size}")
        if self.stride is not None and not 0 < self.stride <= self.size:
            raise ConfigError(f"{prefix}.stride", f"must be within [1, size={self.size}], got {self.stride}",
                              "a stride above size would skip sentences; null means stride = size")


class SentencesChunker:
    Config = SentencesConfig  # its typed config (the registry reads the `chunker` node into it)

    def __init__(self, config: SentencesConfig, tokens=None, encoder=None):
        self.config = config

    def chunk(self, text: str) -> list[Span]:
        return windows(sentence_spans(text), self.config.size, self.config.stride or self.config.size)
