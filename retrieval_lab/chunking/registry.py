"""The chunkers by name (`chunker.name`), one file each, and the typed config of a `chunker` node."""
from __future__ import annotations

from typing import Any

from retrieval_lab.chunking.base import ChunkerConfig
from retrieval_lab.chunking.fixed_tokens import FixedTokensChunker
from retrieval_lab.chunking.recursive import RecursiveChunker
from retrieval_lab.chunking.semantic import SemanticChunker
from retrieval_lab.chunking.sentences import SentencesChunker
from retrieval_lab.chunking.whole_document import WholeDocument
from retrieval_lab.config import check_choice, to_container, typed

TOKEN_SIZED = ("fixed_tokens", "recursive")  # chunkers whose size is in tokens: it counts the whole indexed text

# name -> chunker class(config, token counter, encoder); its typed config is the class's `Config`
CHUNKERS: dict[str, type] = {
    "none": WholeDocument,
    "fixed_tokens": FixedTokensChunker,
    "sentences": SentencesChunker,
    "recursive": RecursiveChunker,
    "semantic": SemanticChunker,
}


def chunker_config(node: Any, prefix: str = "chunker") -> tuple[str, ChunkerConfig]:
    """(name, validated typed config) of the `chunker` node: every error names its key, before any work."""
    data = to_container(node) or {}
    name = data.get("name", "none")
    check_choice(f"{prefix}.name", name, CHUNKERS)
    config = typed(CHUNKERS[name].Config, data, prefix, ignore=("name",))
    config.validate(prefix)
    return name, config
