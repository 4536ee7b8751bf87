"""Chunker `none`: each document is one passage (chunking/passages.py's `whole_documents` makes them without a
chunker when nothing needs counting or caching)."""
from __future__ import annotations

from dataclasses import dataclass

from retrieval_lab.chunking.base import ChunkerConfig, Span


@dataclass
class NoneConfig(ChunkerConfig):
    pass


class WholeDocument:
    Config = NoneConfig  # its typed config (the registry reads the `chunker` node into it)

    def __init__(self, config, tokens=None, encoder=None):
        pass

    def chunk(self, text: str) -> list[Span]:
        return [(0, len(text))]
