"""The chunkers by name (`chunker.name`), one file each, and the typed config of a `chunker` node."""
from __future__ import annotations

from typing import Any

from retrieval_lab.chunking.base import ChunkerConfig
from retrieval_lab.chunking.fixed_tokens import FixedTokensChunker, FixedTokensConfig
from retrieval_lab.chunking.recursive import RecursiveChunker, RecursiveConfig
from retrieval_lab.chunking.semantic import SemanticChunker, SemanticConfig
from retrieval_lab.chunking.sentences import SentencesChunker, SentencesConfig
from retrieval_lab.chunking.whole_document import NoneConfig, WholeDocument
from retrieval_lab.config import check_choice, to_container, typed

TOKEN_SIZED = ("fixed_tokens", "recursive")  # chunkers whose size is in tokens: it counts the whole indexed text

# name -> (typed config, chunker class(config, token counter, encoder))
CHUNKERS: dict[str, tuple[type[ChunkerConfig], type]] = {
    "none": (NoneConfig, WholeDocument),
    "fixed_tokens": (FixedTokensConfig, FixedTokensChunker),
    "sentences": (SentencesConfig, SentencesChunker),
    "recursive": (RecursiveConfig, RecursiveChunker),
    "semantic": (SemanticConfig, SemanticChunker),
}


def chunker_config(node: Any, prefix: str = "chunker") -> tuple[str, ChunkerConfig]:
    """(name, validated typed config) of the `chunker` node: every error names its key, before any work."""
    data = to_container(node) or {}
    name = data.get("name", "none")
    check_choice(f"{prefix}.name", name, CHUNKERS)
    config = typed(CHUNKERS[name][0], data, prefix, ignore=("name",))
    config.validate(prefix)
    return name, config
