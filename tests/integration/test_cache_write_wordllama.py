"""Embeddings written to the cache batch by batch equal those computed in memory, with the bundled WordLlama
(tests/unit/test_cache_write.py: the rest, on hand-made data)."""
from __future__ import annotations

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import whole_documents
from retrieval_lab.dense import embed_texts
from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.dense.embedders import load_embedder
from retrieval_lab.types import Corpus


def test_embeddings_written_batch_by_batch_equal_in_memory_ones(tmp_path):
    """Length-sorted batches, lower-casing, a prefix and normalization, through the memory-mapped entry."""
    config = EmbedderConfig(name="wordllama", progress=False, batch_size=3, sort_by_length=True, lowercase=True,
                            passage_prefix="passage: ")
    corpus = Corpus([f"d{i}" for i in range(10)], ["Title"] * 10,
                    [("Vitamin D and bone fractures " * (i + 1)).strip() for i in range(10)])
    texts = whole_documents(corpus).texts
    model = load_embedder(config)
    in_memory = model.encode(list(texts))
    vectors, meta, hit = embed_texts(model, config, texts, "passage", Cache(tmp_path))
    assert isinstance(vectors, np.memmap) and not hit and meta["count"] == 10
    np.testing.assert_array_equal(np.asarray(vectors), in_memory)
    # normalized a batch at a time, bit for bit as the whole array at once (what the cache held before)
    from dataclasses import replace

    raw = load_embedder(replace(config, normalize=False)).encode(list(texts))
    np.testing.assert_array_equal(in_memory, raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12))
