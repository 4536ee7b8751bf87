"""Chunking: documents -> passages, the units every first stage indexes.

- passages.py: `Passages` (doc id, chunk index, character span, indexed text) and `whole_documents`;
- registry.py: `CHUNKERS` by name (one file each: fixed_tokens, sentences, recursive, semantic, whole_document)
  and `chunker_config`;
- build.py: the cached `passages` stage (`build_passages`, `chunk_corpus`);
- documents.py: ranked passages -> documents, and the passage depth that fills k documents;
- stats.py: chunk statistics and the truncation check against an embedder;
- units.py: what a query returns (passage, parent, window, section, document).
"""
from retrieval_lab.chunking.base import ChunkerConfig
from retrieval_lab.chunking.build import build_passages, chunk_corpus, chunk_spans, indexed_budget
from retrieval_lab.chunking.documents import aggregate_documents, passage_depth, unfilled_rows
from retrieval_lab.chunking.passages import Passages, PassageTexts, whole_documents, with_title
from retrieval_lab.chunking.registry import CHUNKERS, chunker_config
from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.chunking.stats import chunk_stats, truncated_chunks, truncation_fix
from retrieval_lab.chunking.tokens import load_tokenizer

__all__ = ["Passages", "PassageTexts", "with_title", "whole_documents", "CHUNKERS", "ChunkerConfig", "chunker_config",
           "chunk_spans", "build_passages", "chunk_corpus", "indexed_budget", "chunk_stats", "truncated_chunks",
           "truncation_fix", "aggregate_documents", "unfilled_rows", "passage_depth", "sentence_spans",
           "load_tokenizer"]
