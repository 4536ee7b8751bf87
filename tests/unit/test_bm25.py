"""BM25: one tokenizer for both backends, and both backends rank the same documents for the same tokens."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.chunking import Passages
from retrieval_lab.errors import ConfigError
from retrieval_lab.sparse import BM25, BM25Config
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
])
def test_invalid_settings_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        BM25Config(**changes).validate("retriever")
