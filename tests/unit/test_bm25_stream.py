"""The BM25 matrix built from token batches equals the one bm25s.BM25.index builds from all token lists at once."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest

from retrieval_lab.sparse.bm25s_backend import Bm25sIndex, build_scores


def token_lists(n_docs=300, seed=0):
    """Zipf-like tokens, repeated tokens within documents, and some empty documents."""
    rng = np.random.default_rng(seed)
    words = [f"t{i}" for i in range(400)]
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    docs = [list(rng.choice(words, size=int(rng.integers(0, 80)), p=p)) for _ in range(n_docs)]
    docs[3] = []
    docs[-1] = []
    return docs


def batches(docs, size):
    return (docs[i:i + size] for i in range(0, len(docs), size))


def columns(scores, vocab):
    """token -> (document rows, scores) of its column."""
    out = {}
    for token, col in vocab.items():
        if col + 1 < len(scores["indptr"]):
            lo, hi = scores["indptr"][col], scores["indptr"][col + 1]
            out[token] = (scores["indices"][lo:hi].tolist(), scores["data"][lo:hi].tobytes())
    return out


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_streamed_matrix_is_bit_identical_to_bm25s(method, monkeypatch):
    docs = token_lists()
    reference = bm25s.BM25(k1=0.9, b=0.4, delta=0.5, method=method)
    reference.index(docs, show_progress=False)
    model = bm25s.BM25(k1=0.9, b=0.4, delta=0.5, method=method)
    monkeypatch.setattr("retrieval_lab.sparse.bm25s_backend.SCORE_BLOCK", 97)  # score blocks cut documents
    scores, vocab, nonoccurrence = build_scores(model, batches(docs, 7))
    assert scores["num_docs"] == reference.scores["num_docs"] == len(docs)
    assert set(vocab) == set(reference.vocab_dict)
    assert columns(scores, vocab) == columns(reference.scores, reference.vocab_dict)
    if method in ("bm25l", "bm25+"):
        by_token = {t: nonoccurrence[i] for t, i in vocab.items() if i < len(nonoccurrence)}
        assert by_token == {t: reference.nonoccurrence_array[i] for t, i in reference.vocab_dict.items()
                            if i < len(reference.nonoccurrence_array)}


def test_streamed_index_retrieves_exactly_what_bm25s_does():
    docs = token_lists(seed=1)
    queries = [["t1", "t7", "t300"], ["t5"], ["nothing"], ["t2", "t2", "t40"]]
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(docs, show_progress=False)
    ref_docs, ref_scores = reference.retrieve(queries, k=20, show_progress=False, n_threads=0)
    ours = Bm25sIndex(1.2, 0.75, "lucene")
    ours.index(batches(docs, 64))
    got_docs, got_scores = ours.search(queries, 20)
    np.testing.assert_array_equal(got_docs, ref_docs)
    np.testing.assert_array_equal(got_scores, ref_scores)
    # 8 bytes per (document, term) pair, as bm25s's own matrix, plus the column pointers
    assert ours.size_bytes == reference.scores["data"].nbytes + reference.scores["indices"].nbytes + \
        ours._model.scores["indptr"].nbytes
