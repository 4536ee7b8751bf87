"""reranker=http against a scripted stub: Cohere's and TEI's shapes, retries, a result missing, the score cache keyed on
the fingerprint, and billed tokens and cost in the rerank stage's costs."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.errors import ConfigError
from retrieval_lab.rerank import http, make_scorer, rerank, reranker_config
from retrieval_lab.served import ServedModelError
from retrieval_lab.types import Queries, Run
from tests.unit.served_stub import Stub, vector

DOCS = {f"p{i}": f"passage {i} on topic {i % 3}" for i in range(7)}


@pytest.fixture()
def stub():
    server = Stub(dim=8)
    http._PROBES.clear()
    yield server
    server.close()


def scorer(stub, tmp_path, **kw):
    node = {"name": "served", "type": "http", "model": "stub-rerank", "base_url": stub.url, "batch_size": 3,
            "max_retries": 2, "retry_backoff_s": 0.01, "timeout_s": 2.0, "price_per_1m_tokens": 2.0, **kw}
    return make_scorer(reranker_config(node), tmp_path / "cache")


def truth(query, texts, seed="model-a"):
    return np.array([np.dot(vector(query, 8, seed), vector(t, 8, seed)) for t in texts], dtype=np.float32)


@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_scores_follow_the_documents_order(stub, tmp_path, api):
    model = scorer(stub, tmp_path, api=api)
    pairs = [("which topic?", text) for text in DOCS.values()]
    scores, stats = model.score(pairs)
    np.testing.assert_allclose(scores, truth("which topic?", DOCS.values()), rtol=1e-5)
    body = stub.requests[-1]["body"]
    assert ("texts" in body) == (api == "tei") and ("documents" in body) == (api == "cohere")
    assert stats["requests"] == 3  # 7 documents, 3 per request


def test_retries_then_cache_then_costs(stub, tmp_path):
    model = scorer(stub, tmp_path)
    model.identity  # the probe request first, so the faults below hit the scoring
    stub.faults = [{"status": 429}, {"status": 502}]
    queries = Queries(["q1"], ["which topic?"])
    run = Run({"q1": [(pid, 1.0 / (i + 1)) for i, pid in enumerate(DOCS)]})
    reranked, costs = rerank(run, queries, DOCS, model, depth=5)
    best = max(list(DOCS)[:5], key=lambda pid: truth("which topic?", [DOCS[pid]])[0])
    assert reranked["q1"][0][0] == best
    assert costs["rerank_spent_retries"] == 2 and costs["rerank_spent_requests"] == 2
    tokens = 2 * 5 + sum(len(DOCS[p].split()) for p in list(DOCS)[:5])  # the stub bills query x docs + docs
    assert costs["rerank_spent_tokens"] == tokens
    assert costs["rerank_spent_cost"] == pytest.approx(tokens * 2.0 / 1e6)
    sent = len(stub.requests)
    _, again = rerank(run, queries, DOCS, scorer(stub, tmp_path), depth=5)  # a new scorer, the same cache
    assert len(stub.requests) == sent and again["rerank_spent_tokens"] == 0 and again["rerank_pairs_computed"] == 0


def test_a_swapped_model_does_not_replay_cached_scores(stub, tmp_path):
    pairs = [("which topic?", text) for text in DOCS.values()]
    scorer(stub, tmp_path).score(pairs)
    stub.seed = "model-b"
    http._PROBES.clear()  # a new process probes again
    model = scorer(stub, tmp_path)
    scores, stats = model.score(pairs)
    np.testing.assert_allclose(scores, truth("which topic?", DOCS.values(), "model-b"), rtol=1e-5)
    assert stats["pairs_computed"] == len(pairs)


def test_missing_result_and_persistent_failure_are_errors(stub, tmp_path):
    model = scorer(stub, tmp_path)
    model.identity
    stub.faults = [{"drop": True}]
    with pytest.raises(ServedModelError, match=r"1 of 3 documents came back without a score\n  fix: lower "
                                               r"reranker.batch_size"):
        model.score([("q", t) for t in list(DOCS.values())[:3]])
    stub.faults = [{"status": 503}] * 3
    with pytest.raises(ServedModelError, match=r"/rerank failed 3 times; last: HTTP 503"):
        model.score([("q", "never scored")])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="reranker.base_url"):
        reranker_config({"name": "x", "type": "http", "model": "m"})
    with pytest.raises(ConfigError, match=r"reranker.api(.|\n)*cohere, tei"):
        reranker_config({"name": "x", "type": "http", "model": "m", "base_url": "http://h", "api": "openai"})
