"""Chunkers on hand-made documents: exact offsets, known chunks, config errors, caching, aggregation, depth filling."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import (CHUNKERS, Passages, aggregate_documents, build_passages, chunk_spans,
                                    chunk_stats, chunker_config, truncated_chunks, unfilled_rows)
from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.chunking.tokens import load_tokenizer
from retrieval_lab.errors import ConfigError
from retrieval_lab.types import Corpus, Facts, Queries

DOCS = [
    "Cells divide. The p53 protein (TP53) stops them, e.g. after DNA damage. mRNA levels rose 2.5-fold (P < .001). "
    "Why? Nobody knows! Dr. Smith et al. disagree. 3 of 10 mice died.",
    "One short sentence without a full stop",
    "First paragraph line one.\nLine two of it.\n\nSecond paragraph, with clauses; and more clauses, and words.",
    "",
    "  Leading and trailing spaces.  Another one.  ",
]
CORPUS = Corpus(ids=[f"d{i}" for i in range(len(DOCS))], titles=["T0", "", "T2", "T3", "T4"], texts=DOCS)
ALL = [{"name": "none"}, {"name": "fixed_tokens", "size": 8, "overlap": 2},
       {"name": "fixed_tokens", "size": 5, "overlap": 0, "tokenizer": "whitespace"},
       {"name": "sentences", "size": 2, "stride": 1}, {"name": "sentences", "size": 1},
       {"name": "recursive", "size": 10}, {"name": "recursive", "size": 3},
       {"name": "semantic", "max_size": 20}, {"name": "semantic", "threshold": 0.5, "max_size": 12}]


def spans_of(node, texts=DOCS):
    name, config = chunker_config(node)
    return chunk_spans(name, config, texts, load_tokenizer(config.tokenizer))


def texts_of(node, text):
    return [text[s:e] for s, e in spans_of(node, [text])[0]]


def node_id(node) -> str:
    return "-".join(str(v) for v in node.values())


# semantic chunking embeds sentences with WordLlama: tests/integration/test_chunking_models.py runs those
@pytest.mark.parametrize("node", [n for n in ALL if n["name"] != "semantic"], ids=node_id)
def test_offsets_are_exact_and_no_text_is_lost(node):
    passages = build_passages(node, CORPUS)
    for pid, doc, text, s, e, idx in zip(passages.ids, passages.doc_ids, passages.texts, passages.starts,
                                         passages.ends, passages.chunk_index):
        row = CORPUS.ids.index(doc)
        own = DOCS[row][s:e]
        assert 0 <= s <= e <= len(DOCS[row])
        title = CORPUS.titles[row]
        assert text == (f"{title} {own}".strip() if title else own)  # the title only in the indexed text
        assert own == own.strip() or node["name"] == "none"
        assert pid == (doc if node["name"] == "none" else f"{doc}#{idx}")
    for row, doc in enumerate(CORPUS.ids):  # every document keeps a passage; chunk indices are 0..n-1
        mine = [i for i, d in enumerate(passages.doc_ids) if d == doc]
        assert mine and list(passages.chunk_index[mine]) == list(range(len(mine)))
        covered = np.zeros(len(DOCS[row]), dtype=bool)
        for i in mine:
            covered[passages.starts[i]:passages.ends[i]] = True
        visible = np.array([not c.isspace() for c in DOCS[row]], dtype=bool)
        assert covered[visible].all(), "a visible character belongs to no chunk"


def test_fixed_tokens_known_windows():
    node = {"name": "fixed_tokens", "size": 3, "overlap": 1, "tokenizer": "whitespace"}
    assert texts_of(node, "a b c d e f g") == ["a b c", "c d e", "e f g"]
    assert texts_of(node, "a b c d e f") == ["a b c", "c d e", "e f"]
    assert texts_of(node, "a  b") == ["a  b"]
    bert = texts_of({"name": "fixed_tokens", "size": 4, "overlap": 0}, "Unbelievable results, really.")
    assert "".join(bert).replace(" ", "") == "Unbelievableresults,really."
    assert all(load_tokenizer("bert").count(t) <= 4 for t in bert)


def test_sentence_splitter_keeps_abbreviations_and_starts():
    sents = [DOCS[0][s:e] for s, e in sentence_spans(DOCS[0])]
    assert sents == ["Cells divide.", "The p53 protein (TP53) stops them, e.g. after DNA damage.",
                     "mRNA levels rose 2.5-fold (P < .001).", "Why?", "Nobody knows!", "Dr. Smith et al. disagree.",
                     "3 of 10 mice died."]
    assert sentence_spans("") == [] and sentence_spans("no stop") == [(0, 7)]


def test_sentence_spans_recover_a_scifact_style_join():
    abstract = ["BACKGROUND We studied 12 mice.", "Results (n = 5) were clear.", "mRNA rose.", "p53 fell by 2.5%.",
                "[1] Cited work agrees.", "\"Quoted\" start."]
    text = " ".join(s.strip() for s in abstract)
    assert [text[s:e] for s, e in sentence_spans(text)] == abstract


def test_sentences_size_and_stride():
    text = "A one. B two. C three. D four. E five."
    assert texts_of({"name": "sentences", "size": 2}, text) == ["A one. B two.", "C three. D four.", "E five."]
    assert texts_of({"name": "sentences", "size": 3, "stride": 2}, text) == [
        "A one. B two. C three.", "C three. D four. E five."]


def test_recursive_prefers_paragraphs_and_respects_size():
    text = DOCS[2]
    assert texts_of({"name": "recursive", "size": 14}, text) == [
        "First paragraph line one.\nLine two of it.", "Second paragraph, with clauses; and more clauses, and words."]
    tok = load_tokenizer("bert")
    for size in (3, 5, 8):
        assert all(tok.count(c) <= size for c in texts_of({"name": "recursive", "size": size}, text))


@pytest.mark.parametrize("node, key", [
    ({"name": "fixed_tokens", "size": 10, "overlap": 10}, "chunker.overlap"),
    ({"name": "fixed_tokens", "size": 10, "overlap": 12}, "chunker.overlap"),
    ({"name": "fixed_tokens", "size": 0}, "chunker.size"),
    ({"name": "sentences", "size": -1}, "chunker.size"),
    ({"name": "sentences", "size": 2, "stride": 3}, "chunker.stride"),
    ({"name": "recursive", "size": 0}, "chunker.size"),
    ({"name": "semantic", "max_size": 0}, "chunker.max_size"),
    ({"name": "semantic", "percentile": 120}, "chunker.percentile"),
    ({"name": "fixed_tokens", "tokenizer": "tiktoken-cl100k"}, "chunker.tokenizer"),
    ({"name": "sentences", "aggregate": "mean"}, "chunker.aggregate"),
    ({"name": "paragraphs"}, "chunker.name"),
    ({"name": "sentences", "sizes": 3}, "chunker.sizes"),
])
def test_config_errors_name_the_key(node, key):
    with pytest.raises(ConfigError) as err:
        chunker_config(node)
    assert err.value.key == key


def test_registry_has_every_chunker():
    assert set(CHUNKERS) == {"none", "fixed_tokens", "sentences", "recursive", "semantic"}


def test_passages_are_cached_on_content_config_and_tokenizer(tmp_path):
    cache = Cache(tmp_path)
    node = {"name": "fixed_tokens", "size": 6, "overlap": 1}
    first = build_passages(node, CORPUS, cache)
    again = build_passages(node, CORPUS, cache)
    assert not first.meta["cache_hit"] and again.meta["cache_hit"]
    assert again.ids == first.ids and again.texts == first.texts
    # a token size counts the title too (chunking.indexed_budget): the title shapes token-sized chunks only
    assert not build_passages({**node, "title": False}, CORPUS, cache).meta["cache_hit"]
    by_sentences = {"name": "sentences", "size": 2}
    build_passages(by_sentences, CORPUS, cache)
    assert build_passages({**by_sentences, "title": False}, CORPUS, cache).meta["cache_hit"]
    assert not build_passages({**node, "tokenizer": "whitespace"}, CORPUS, cache).meta["cache_hit"]
    assert not build_passages({**node, "size": 7}, CORPUS, cache).meta["cache_hit"]
    other = Corpus(CORPUS.ids, CORPUS.titles, [*DOCS[:-1], "Changed text."])
    assert not build_passages(node, other, cache).meta["cache_hit"]


def make_passages(layout: dict[str, int]) -> Passages:
    """Passages for documents with the given chunk counts: ids '<doc>#<i>'."""
    ids, docs, index = [], [], []
    for doc, n in layout.items():
        for i in range(n):
            ids.append(f"{doc}#{i}")
            docs.append(doc)
            index.append(i)
    zeros = np.zeros(len(ids), dtype=np.int64)
    return Passages(ids, docs, list(ids), zeros, zeros, np.array(index), zeros)


def test_aggregation_max_sum_first_known_answers():
    passages = make_passages({"a": 3, "b": 2, "c": 1})
    hits = [("a#2", 9.0), ("b#0", 8.0), ("a#0", 7.0), ("b#1", 6.0), ("c#0", 1.0), ("a#1", 0.5)]
    assert aggregate_documents(hits, passages, 10, "max") == [("a", 9.0), ("b", 8.0), ("c", 1.0)]
    assert aggregate_documents(hits, passages, 10, "sum") == [("a", 16.5), ("b", 14.0), ("c", 1.0)]
    assert aggregate_documents(hits, passages, 10, "first") == [("b", 8.0), ("a", 7.0), ("c", 1.0)]
    assert aggregate_documents(hits, passages, 2, "max") == [("a", 9.0), ("b", 8.0)]
    assert aggregate_documents([("a#1", 3.0), ("b#1", 2.0)], passages, 10, "first") == []
    for mode in ("max", "sum", "first"):  # a document never counts twice
        docs = [d for d, _ in aggregate_documents(hits, passages, 10, mode)]
        assert len(docs) == len(set(docs))


def test_documents_step_uses_the_configured_aggregation():
    from retrieval_lab.pipeline import DocumentsStep
    from retrieval_lab.types import Run

    passages = make_passages({"a": 2, "b": 2})
    run = Run({"q": [("a#1", 5.0), ("b#0", 4.0), ("b#1", 3.0), ("a#0", 0.1)]})
    assert DocumentsStep().of(run, passages, 10)["q"] == [("a", 5.0), ("b", 4.0)]
    assert DocumentsStep("sum").of(run, passages, 10)["q"] == [("b", 7.0), ("a", 5.1)]
    assert DocumentsStep("first").of(run, passages, 10)["q"] == [("b", 4.0), ("a", 0.1)]


def corpus_of(layout: dict[str, int]) -> Corpus:
    return Corpus(list(layout), [""] * len(layout), [""] * len(layout))


class FakeStage:
    """Ranks passages in row order: the 60 chunks of d0 come before every other document."""

    def __init__(self, passages):
        self.passages = passages
        self.identity = {"name": "fake"}
        self.facts = Facts()
        self.depths = []

    def index(self, passages):
        pass

    def stats(self):
        return {}

    def search(self, texts, k):
        self.depths.append(k)
        n = min(k, len(self.passages))
        rows = np.tile(np.arange(n), (len(texts), 1))
        return rows, np.tile(100.0 - np.arange(n), (len(texts), 1))


def test_first_stage_searches_each_query_deep_enough_to_fill_k_documents(tmp_path):
    from retrieval_lab.pipeline.step import Context
    from retrieval_lab.pipeline.steps import FirstStageStep

    layout = {"d0": 60, **{f"d{i}": 1 for i in range(1, 41)}}  # first guess: 5 * 2 * 100 / 41 = 25 passages
    passages = make_passages(layout)
    stage = FakeStage(passages)
    step = FirstStageStep("fake", stage)
    run = step.run(Context(Queries(["q"], ["text"]), corpus_of(layout), passages, 5)).run
    docs = {passages.doc_ids[passages.row_of()[pid]] for pid, _ in run["q"]}
    assert len(docs) >= 5 and sorted(set(stage.depths)) == [25, 50, 100]  # the first guess was too shallow: doubled
    assert unfilled_rows(np.arange(10)[None, :], passages, 5) == [0]  # ten chunks, one document
    assert unfilled_rows(np.array([[0, 1, -1]]), passages, 5) == []  # the stage ran dry: nothing more to get


def test_deepening_is_per_query_so_a_ranking_does_not_depend_on_the_other_queries(tmp_path):
    from retrieval_lab.pipeline.step import Context
    from retrieval_lab.pipeline.steps import FirstStageStep

    class PerQuery(FakeStage):  # query "deep" needs the 60 chunks of d0 first; "flat" starts with one-chunk documents
        def search(self, texts, k):
            self.depths.append((tuple(texts), k))
            n = min(k, len(self.passages))
            order = {"deep": np.arange(len(self.passages)), "flat": np.arange(len(self.passages))[::-1]}
            return (np.stack([order[t][:n] for t in texts]),
                    np.tile(100.0 - np.arange(n), (len(texts), 1)).astype(np.float32))

    layout = {"d0": 60, **{f"d{i}": 1 for i in range(1, 41)}}
    passages = make_passages(layout)
    together = PerQuery(passages)
    both = FirstStageStep("fake", together).run(
        Context(Queries(["a", "b"], ["deep", "flat"]), corpus_of(layout), passages, 5)).run
    alone = PerQuery(passages)
    flat = FirstStageStep("fake", alone).run(Context(Queries(["b"], ["flat"]), corpus_of(layout), passages, 5)).run
    assert both["b"] == flat["b"] and len(both["b"]) == 25  # "flat" was never deepened, asked alone or not
    assert len(both["a"]) == 100


def test_chunk_stats_and_warnings(caplog):
    passages = build_passages({"name": "sentences", "size": 50}, CORPUS)
    with caplog.at_level(logging.WARNING):
        stats = chunk_stats(passages, len(CORPUS))
    assert stats["chunks"] == len(CORPUS) and stats["docs_single_chunk_share"] == 1.0
    assert "fit in one chunk" in caplog.text
    caplog.clear()
    small = build_passages({"name": "sentences", "size": 1}, CORPUS)
    with caplog.at_level(logging.WARNING):
        stats = chunk_stats(small, len(CORPUS))
    assert "fit in one chunk" not in caplog.text
    assert stats["chunks"] == len(small) and stats["docs_single_chunk_share"] == pytest.approx(3 / 5)
    assert stats["chunk_tokens_p95"] >= stats["chunk_tokens_mean"] > 0
    with caplog.at_level(logging.WARNING):
        n = truncated_chunks(small, load_tokenizer("bert"), max_tokens=8)
    expected = sum(load_tokenizer("bert").count(t) + 2 > 8 for t in small.texts)
    assert n == expected > 0 and "truncated" in caplog.text
