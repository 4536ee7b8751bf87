"""The dense stage with the bundled models (WordLlama, ONNX MiniLM-L3, MiniLM-L6): search, the cache hit that loads no
model, the tokenizer, truncation statistics and the token chunks that fit the embedder
(tests/unit/test_dense_stage.py: the rest, without a model)."""
from __future__ import annotations

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages
from retrieval_lab.dense import DenseRetriever
from retrieval_lab.dense.config import EmbedderConfig
from retrieval_lab.dense.index import IndexConfig
from tests.unit.test_dense_stage import TEXTS


def passages(texts=TEXTS) -> Passages:
    ids = [f"d{i}" for i in range(len(texts))]
    return Passages(ids, ids, list(texts), np.zeros(len(texts), int), np.array([len(t) for t in texts]))


def wordllama(**kw) -> EmbedderConfig:
    return EmbedderConfig(name="wordllama", progress=False, **kw)


def test_dense_stage_finds_the_matching_passage(tmp_path):
    stage = DenseRetriever(wordllama(), IndexConfig(), Cache(tmp_path)).index(passages())
    rows, scores = stage.search(["vitamin D and fractures", "energy production in mitochondria"], 3)
    assert rows[:, 0].tolist() == [0, 1]
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    stats = stage.stats()
    for key in ("encode_passages_per_second", "index_size_bytes", "peak_memory_mb", "ann_recall_at_10"):
        assert stats[key] > 0, key
    assert stats["embeddings_cache_hit"] == 0.0
    one_rows, _ = stage.search(["vitamin D and fractures"], 3)
    assert one_rows[0].tolist() == rows[0].tolist()


def test_second_stage_hits_the_cache_without_loading_the_model(tmp_path):
    DenseRetriever(wordllama(), IndexConfig(name="hnsw", M=8), Cache(tmp_path)).index(passages())
    again = DenseRetriever(wordllama(), IndexConfig(name="hnsw", M=8), Cache(tmp_path)).index(passages())
    assert again.stats()["embeddings_cache_hit"] == 1.0
    assert again.stats()["index_cache_hit"] == 1.0
    assert again.embedder.loaded is None  # nothing encoded, so no model loaded
    other = DenseRetriever(wordllama(passage_prefix="passage: "), IndexConfig(), Cache(tmp_path))
    assert other.index(passages()).stats()["embeddings_cache_hit"] == 0.0  # prefix: new key
    assert {e.stage for e in Cache(tmp_path).entries()} == {"embeddings", "indexes"}


def test_facts_declare_the_tokenizer_without_loading_the_model():
    stage = DenseRetriever(wordllama(), IndexConfig(), Cache(enabled=False))
    assert len(stage.facts.tokenizer("vitamin D")["input_ids"]) > 0 and stage.embedder.loaded is None
    l3 = DenseRetriever(EmbedderConfig(name="minilm_l3"), IndexConfig(), Cache(enabled=False))
    facts = l3.facts
    assert facts.tokenizer.model_max_length > 0 and facts.max_tokens == 128 and l3.embedder.loaded is None
    assert facts.model == "minilm_l3" and facts.case_sensitive is False
    from retrieval_lab.pipeline import embedder_tokens

    counter = embedder_tokens([facts])  # chunker.tokenizer=embedder: counting tokens loads no model either
    assert counter.count("vitamin D deficiency") > 0 and l3.embedder.loaded is None


def test_truncation_stats_count_passages_over_the_embedders_token_limit():
    """`chunks_truncated` (logged with every chunked dense run): passages longer than the model's max tokens."""
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.pipeline import truncation_stats
    from retrieval_lab.types import Corpus

    corpus = Corpus(["short", "long", "longer"], ["", "", ""],
                    ["vitamin D", "insulin resistance " * 80, "gut microbiome diversity " * 200])
    l3 = DenseRetriever(EmbedderConfig(name="minilm_l3"), IndexConfig(), Cache(enabled=False))  # 128 tokens
    passages = whole_documents(corpus, title=True)
    assert truncation_stats([l3.facts], passages) == {"chunks_truncated": 2.0} and l3.embedder.loaded is None
    static = DenseRetriever(wordllama(), IndexConfig(), Cache(enabled=False))  # no token limit: nothing to count
    assert truncation_stats([static.facts], passages) == {}
    # several dense inputs (a hybrid): each embedder's own count, and the most any of them truncates
    l6 = DenseRetriever(EmbedderConfig(name="minilm_l6"), IndexConfig(), Cache(enabled=False))  # 256 tokens
    alone = truncation_stats([l6.facts], passages)["chunks_truncated"]
    assert alone == 1.0
    assert truncation_stats([l3.facts, static.facts, l6.facts], passages) == {
        "chunks_truncated": 2.0, "chunks_truncated_minilm_l3": 2.0,
                                                            "chunks_truncated_minilm_l6": 1.0}
    assert truncation_stats([l6.facts, l3.facts], passages)["chunks_truncated"] == 2.0  # not the last input's count


def test_default_token_chunks_fit_the_embedder_and_the_warning_names_a_fix_that_changes_something(caplog):
    """128-token chunks with their title fed MiniLM-L3 (128 tokens): 98% were truncated, and the warning said to
    use chunker=fixed_tokens, which was in use. A token size now counts the whole indexed text."""
    import logging

    from retrieval_lab.chunking import build_passages
    from retrieval_lab.pipeline import truncation_stats
    from retrieval_lab.types import Corpus

    words = "insulin resistance in skeletal muscle follows chronic inflammation of adipose tissue " * 60
    corpus = Corpus(["a", "b"], ["Mechanisms of insulin resistance: a systematic review of cohort studies", ""],
                    [words, "vitamin D " * 300])
    l3 = DenseRetriever(EmbedderConfig(name="minilm_l3"), IndexConfig(), Cache(enabled=False))  # 128 tokens
    passages = build_passages({"name": "fixed_tokens", "size": 128}, corpus)  # conf/chunker/fixed_tokens.yaml
    with caplog.at_level(logging.WARNING):
        assert truncation_stats([l3.facts], passages) == {"chunks_truncated": 0.0}
    assert "exceed" not in caplog.text and len(passages) > 10
    caplog.clear()
    bigger = build_passages({"name": "fixed_tokens", "size": 256}, corpus)
    with caplog.at_level(logging.WARNING):
        assert truncation_stats([l3.facts], bigger)["chunks_truncated"] > 0
    assert "chunker.size=256 is above what the embedder reads; set chunker.size=128" in caplog.text
    assert "(chunker=fixed_tokens)" not in caplog.text
    caplog.clear()
    sentences = build_passages({"name": "sentences", "size": 12}, corpus)
    with caplog.at_level(logging.WARNING):
        truncation_stats([l3.facts], sentences)
    assert "chunker=sentences sizes chunks in sentences (chunker.size=12)" in caplog.text
    assert "chunker=fixed_tokens chunker.size=128" in caplog.text
