"""BM25: one tokenizer for both backends, and both backends rank the same documents for the same tokens."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.chunking import Passages
from retrieval_lab.errors import ConfigError
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.sparse.rm3 import RM3Config, expanded_query
from retrieval_lab.sparse.tokenize import Tokenizer, TokenizerConfig

WORDS = [f"w{i}" for i in range(300)]


def passages(texts: list[str]) -> Passages:
    ids = [f"d{i}" for i in range(len(texts))]
    return Passages(ids, ids, texts, np.zeros(len(texts), int), np.array([len(t) for t in texts]))


def random_corpus(rng, n_docs=400):
    # Zipf-like vocabulary, so some terms are common and some rare, as in real text.
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 60)), p=p)) for _ in range(n_docs)]


def test_tokenizer_lowercases_drops_stopwords_and_stems():
    tok = Tokenizer(TokenizerConfig())
    assert tok(["The Running dogs AND cats"]) == [["run", "dog", "cat"]]
    raw = Tokenizer(TokenizerConfig(lowercase=False, stopwords=None, stemmer=None))
    assert raw(["The Running dogs"]) == [["The", "Running", "dogs"]]


def test_token_spans_are_the_tokens_at_their_places_in_the_text():
    text = "The Running dogs, and cats (re-run)"
    for config in (TokenizerConfig(), TokenizerConfig(stopwords="en_plus"),
                   TokenizerConfig(lowercase=False, stopwords=None, stemmer=None)):
        tok = Tokenizer(config)
        assert [token for _, _, token in tok.spans(text)] == tok([text])[0]
    assert Tokenizer(TokenizerConfig()).spans(text) == [(4, 11, "run"), (12, 16, "dog"), (22, 26, "cat"),
                                                        (28, 30, "re"), (31, 34, "run")]


# rank-bm25's own Okapi and BM25L differ from bm25s's formulas (IDF floor, TF normalisation); lucene and bm25+ agree.
@pytest.mark.parametrize("variant", ["lucene", "bm25+"])
def test_backends_rank_the_same_documents(variant):
    rng = np.random.default_rng(3)
    texts = random_corpus(rng)
    # Okapi IDF is floored differently by rank-bm25 for terms in half the docs or more: query rarer terms.
    queries = [" ".join(rng.choice(WORDS[30:], size=3)) for _ in range(50)]
    config = dict(k1=1.2, b=0.75, variant=variant, tokenizer=TokenizerConfig(stopwords=None, stemmer=None))
    fast = BM25(BM25Config(backend="bm25s", **config)).index(passages(texts))
    slow = BM25(BM25Config(backend="rank_bm25", **config)).index(passages(texts))
    fast_docs, fast_scores = fast.search(queries, 10)
    slow_docs, slow_scores = slow.search(queries, 10)
    np.testing.assert_allclose(fast_scores, slow_scores, rtol=1e-4, atol=1e-4)
    # Same documents above the k-th score (ties at the cut may pick different documents).
    for row in range(len(queries)):
        cut = fast_scores[row][-1] + 1e-3
        assert set(fast_docs[row][fast_scores[row] > cut]) == set(slow_docs[row][slow_scores[row] > cut])
        assert (fast_scores[row] > cut).sum() >= 5


def test_unmatched_query_returns_no_documents():
    bm25 = BM25(BM25Config()).index(passages(["cats purr", "dogs bark"]))
    docs, scores = bm25.search(["zebra"], 2)
    assert (docs == -1).all()


def test_title_is_indexed_with_text():
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.types import Corpus

    corpus = Corpus(["a", "b"], ["Photosynthesis", ""], ["plants use light", "animals eat plants"])
    bm25 = BM25(BM25Config()).index(whole_documents(corpus))
    docs, _ = bm25.search(["photosynthesis"], 2)
    assert docs[0][0] == 0 and docs[0][1] == -1


@pytest.mark.parametrize("changes, key", [
    (dict(b=1.5), "retriever.b"),
    (dict(b=-0.1), "retriever.b"),
    (dict(k1=-1.0), "retriever.k1"),
    (dict(backend="lucene"), "retriever.backend"),
    (dict(backend="rank_bm25", variant="atire"), "retriever.variant"),
    (dict(tokenizer=TokenizerConfig(stemmer="klingon")), "retriever.tokenizer.stemmer"),
    (dict(tokenizer=TokenizerConfig(stopwords="fr_custom")), "retriever.tokenizer.stopwords"),
    (dict(rm3=RM3Config(fb_docs=-1)), "retriever.rm3.fb_docs"),
    (dict(rm3=RM3Config(fb_docs=10, fb_terms=0)), "retriever.rm3.fb_terms"),
    (dict(rm3=RM3Config(query_weight=1.5)), "retriever.rm3.query_weight"),
])
def test_invalid_settings_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        BM25Config(**changes).validate("retriever")


@pytest.mark.parametrize("backend", ["bm25s", "rank_bm25"])
def test_weighted_search_with_one_per_occurrence_is_plain_search(backend):
    rng = np.random.default_rng(5)
    texts = random_corpus(rng)
    queries = [list(rng.choice(WORDS[10:], size=4)) for _ in range(30)]  # repeats count twice in both
    config = BM25Config(backend=backend, tokenizer=TokenizerConfig(stopwords=None, stemmer=None))
    bm25 = BM25(config).index(passages(texts))
    docs, scores = bm25._index.search(queries, 20)
    weights = [{t: float(q.count(t)) for t in q} for q in queries]
    weighted_docs, weighted_scores = bm25._index.search_weighted(weights, 20)
    np.testing.assert_allclose(weighted_scores, scores, rtol=1e-5)
    for row in range(len(queries)):  # the same documents above the cut (ties at the cut may differ)
        above = scores[row] > scores[row][-1] + 1e-4
        assert set(docs[row][above]) == set(weighted_docs[row][above])


def test_rm3_adds_the_feedback_passages_terms_by_score_share():
    weights = expanded_query(["heart"], feedback=[["heart", "cardiac", "cardiac"], ["heart", "valve"]],
                             feedback_scores=[3.0, 1.0], fb_terms=2, query_weight=0.5)
    # relevance model: heart 0.75/3 + 0.25/2 = 0.375, cardiac 0.75 * 2/3 = 0.5, valve 0.125 -> keep cardiac, heart
    assert weights == pytest.approx({"heart": 0.5 + 0.5 * 0.375 / 0.875, "cardiac": 0.5 * 0.5 / 0.875})
    assert sum(weights.values()) == pytest.approx(1.0)


def test_rm3_without_feedback_keeps_the_query():
    assert expanded_query(["a", "b", "a"], [], [], 10, 0.5) == {"a": 2.0, "b": 1.0}
    assert expanded_query(["a"], [["x"]], [0.0], 10, 0.5) == {"a": 1.0}


def test_rm3_finds_a_document_that_shares_no_term_with_the_query():
    texts = ["myocardial infarction heart attack", "myocardial infarction treatment aspirin",
             "aspirin dose infarction", "gardening tomatoes soil"]
    plain = BM25(BM25Config()).index(passages(texts))
    expanded = BM25(BM25Config(rm3=RM3Config(fb_docs=2, fb_terms=5))).index(passages(texts))
    assert 2 not in plain.search(["heart attack"], 4)[0][0]  # no shared term: not retrieved
    docs, _ = expanded.search(["heart attack"], 4)
    assert docs[0][0] == 0 and 2 in docs[0] and 3 not in docs[0]


def test_rm3_off_keeps_the_cache_key_and_on_changes_it():
    off = BM25(BM25Config()).identity
    assert "rm3" not in off
    on = BM25(BM25Config(rm3=RM3Config(fb_docs=10))).identity
    assert on["rm3"] == {"fb_docs": 10, "fb_terms": 10, "query_weight": 0.5}
