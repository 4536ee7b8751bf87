"""What every chunker shares: a span type, the common config (title, tokenizer) and the chunker protocol."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from retrieval_lab.chunking.tokens import check_tokenizer_name
from retrieval_lab.config import check_choice

AGGREGATIONS = ("max", "sum", "first")
Span = tuple[int, int]  # character [start, end) in the document text


@dataclass
class ChunkerConfig:
    title: bool = True  # prepend the document title to every chunk's indexed text (never to its span)
    tokenizer: str = "bert"  # counts tokens for sizes and statistics: bert, whitespace, embedder, or a local folder
    aggregate: str = "max"  # passage scores -> document score: max, sum, first

    def validate(self, prefix: str = "chunker") -> None:
        check_tokenizer_name(self.tokenizer, f"{prefix}.tokenizer")
        check_choice(f"{prefix}.aggregate", self.aggregate, AGGREGATIONS)


def windows(units: list[Span], size: int, stride: int) -> list[Span]:
    """Spans over `size` consecutive units (tokens, sentences), one starting every `stride` units, until a window
    reaches the last unit; [] for no units."""
    out = []
    for i in range(0, len(units), stride):
        group = units[i:i + size]
        out.append((group[0][0], group[-1][1]))
        if i + size >= len(units):
            break
    return out


def trimmed(text: str, spans: list[Span]) -> list[Span]:
    """Each span shrunk to start and end on a visible character; spans left empty are dropped."""
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


class Chunker(Protocol):
    def chunk(self, text: str) -> list[Span]: ...
