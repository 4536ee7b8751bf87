"""`recursive`: split on the coarsest separator that yields pieces of at most `size` tokens, then merge neighbours.

Separator hierarchy (as langchain's RecursiveCharacterTextSplitter): paragraphs, lines, sentences (the splitter in
sentences.py), clauses, words; a single word longer than `size` is cut on token boundaries. Pieces are merged
greedily left to right while the merged span stays within `size` tokens; a separator's visible part stays with the
piece before it, so chunks cover every visible character. Offsets are exact by construction.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from retrieval_lab.chunking.base import ChunkerConfig, Span, trimmed, windows
from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.errors import ConfigError

SENTENCE = "<sentence>"


@dataclass
class RecursiveConfig(ChunkerConfig):
    size: int = 256
    separators: list[str] = field(default_factory=lambda: ["\n\n", "\n", SENTENCE, "; ", ", ", " "])

    def validate(self, prefix: str = "chunker") -> None:
        super().validate(prefix)
        if self.size <= 0:
            raise ConfigError(f"{prefix}.size", f"must be a positive number of tokens, got {self.size}")
        if not self.separators or any(not s for s in self.separators):
            raise ConfigError(f"{prefix}.separators", "must be a list of non-empty strings",
                              f"e.g. ['\\n\\n', '\\n', '{SENTENCE}', ' ']")


def _pieces(text: str, s: int, e: int, sep: str) -> list[Span]:
    """Split [s, e) on `sep`, its visible part (`;` of `"; "`) kept at the end of the piece before it, trimming
    whitespace; empty pieces vanish. So no visible character is ever dropped."""
    if sep == SENTENCE:
        return [(s + a, s + b) for a, b in sentence_spans(text[s:e])]
    out, start = [], s
    for m in re.finditer(re.escape(sep), text[s:e]):
        out.append((start, s + m.start() + len(sep.rstrip())))
        start = s + m.end()
    out.append((start, e))
    return trimmed(text, out)


class RecursiveChunker:
    Config = RecursiveConfig  # its typed config (the registry reads the `chunker` node into it)

    def __init__(self, config: RecursiveConfig, tokens, encoder=None):
        self.config, self.tokens = config, tokens

    def chunk(self, text: str) -> list[Span]:
        toks = self.tokens.spans(text)
        if not toks:
            return []
        starts, ends = [t[0] for t in toks], [t[1] for t in toks]

        def count(a: int, b: int) -> int:  # tokens that start inside [a, b)
            return bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a)

        def split(a: int, b: int, level: int) -> list[Span]:
            if count(a, b) <= self.config.size:
                return [(a, b)]
            if level >= len(self.config.separators):
                lo, hi = bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)
                return windows(list(zip(starts[lo:hi], ends[lo:hi])), self.config.size, self.config.size)
            pieces = _pieces(text, a, b, self.config.separators[level])
            if len(pieces) <= 1:
                return split(a, b, level + 1) if not pieces or pieces[0] == (a, b) else split(*pieces[0], level)
            out: list[Span] = []
            for pa, pb in pieces:
                for qa, qb in split(pa, pb, level + 1) if count(pa, pb) > self.config.size else [(pa, pb)]:
                    if out and count(out[-1][0], qb) <= self.config.size:
                        out[-1] = (out[-1][0], qb)
                    else:
                        out.append((qa, qb))
            return out

        first, last = toks[0][0], toks[-1][1]
        return split(first, last, 0)
