"""MMR diversification (retrieval_lab/diversify): the greedy order on hand-made vectors with known answers, the
scores it hands on, short lists and ties, and the config's errors (each naming its key, with a fix that works)."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.diversify import DIVERSIFIERS, MMRConfig, diversify, diversify_config, mmr_order
from retrieval_lab.diversify.mmr import normalized
from retrieval_lab.errors import ConfigError

# A and its near-copy A2 point the same way; B is orthogonal to both
A, A2, B = [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]


def test_a_near_duplicate_steps_aside_below_the_break_even_lambda():
    # normalized relevance: A 1, A2 0.8, B 0. After A: A2 gains 0.8 l - (1 - l) * 1, B gains 0: equal at l = 1 / 1.8
    relevance, vectors = normalized(np.array([10.0, 9.0, 5.0])), np.array([A, A2, B])
    assert relevance.tolist() == pytest.approx([1.0, 0.8, 0.0])
    assert mmr_order(relevance, vectors, 0.55) == [0, 2, 1]
    assert mmr_order(relevance, vectors, 0.56) == [0, 1, 2]
    assert mmr_order(relevance, vectors, 0.0) == [0, 2, 1]  # novelty only: still the most relevant first


def test_lambda_one_keeps_the_ranking_and_ties_keep_their_order():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.random(30))[::-1]
    vectors = rng.normal(size=(30, 8))
    assert mmr_order(normalized(scores), vectors, 1.0) == list(range(30))
    # equal relevance and mutually orthogonal passages: nothing separates them, the ranking's order stands
    assert mmr_order(np.ones(4), np.eye(4), 0.5) == [0, 1, 2, 3]
    # a zero vector is similar to nothing (no division by zero)
    assert mmr_order(np.array([1.0, 0.9, 0.1]), np.array([A, [0.0, 0.0], A2]), 0.5) == [0, 1, 2]


def test_three_way_order_by_hand():
    # unit vectors at 0, 10 and 90 degrees; relevance 1, 0.9, 0.6; lambda 0.7
    # after P0: P1 = 0.63 - 0.3 * cos10 (0.985) = 0.335, P2 = 0.42 - 0 = 0.42 -> P2, then P1
    angle = np.radians([0.0, 10.0, 90.0])
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    assert mmr_order(np.array([1.0, 0.9, 0.6]), vectors, 0.7) == [0, 2, 1]
    assert mmr_order(np.array([1.0, 0.9, 0.6]), vectors, 0.8) == [0, 1, 2]  # 0.72 - 0.197 = 0.523 > 0.48


def test_diversify_reorders_the_top_depth_and_hands_scores_on_by_position():
    hits = [("a", 10.0), ("a2", 9.0), ("b", 5.0), ("c", 4.0), ("d", 1.0)]
    vectors = np.array([A, A2, B, [0.7, 0.7], [0.0, 1.0]])
    out = diversify(hits, vectors, MMRConfig(lambda_=0.5, depth=3))
    assert out == [("a", 10.0), ("b", 9.0), ("a2", 5.0), ("c", 4.0), ("d", 1.0)]  # below depth: unchanged
    assert diversify(hits, vectors, MMRConfig(lambda_=1.0, depth=5)) == hits
    assert diversify(hits, vectors, MMRConfig(lambda_=0.5, depth=3)) != diversify(hits, vectors,
                                                                                    MMRConfig(lambda_=0.9, depth=3))


def test_short_lists_and_depth_beyond_the_list():
    config = MMRConfig(lambda_=0.3, depth=20)
    assert diversify([], np.zeros((0, 2)), config) == []
    assert diversify([("x", 1.0)], np.array([A]), config) == [("x", 1.0)]
    assert diversify([("a", 2.0), ("a2", 2.0), ("b", 2.0)], np.array([A, A2, B]), config) == \
        [("a", 2.0), ("b", 2.0), ("a2", 2.0)]  # equal scores: relevance 1 for all, novelty decides


def test_cosine_relevance_ranks_by_the_query_vector():
    hits = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    out = diversify(hits, vectors, MMRConfig(lambda_=1.0, depth=3, relevance="cosine"),
                    query_vector=np.array([0.0, 2.0]))
    assert [pid for pid, _ in out] == ["b", "c", "a"]
    assert [score for _, score in out] == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="query's embedding"):
        diversify(hits, vectors, MMRConfig(relevance="cosine", depth=3))


def test_config_reads_lambda_and_is_off_by_default():
    assert diversify_config(None) is None and diversify_config({"name": "none"}) is None
    config = diversify_config({"name": "mmr", "lambda": 0.5, "depth": 10})
    assert (config.lambda_, config.depth, config.relevance, config.embedder) == (0.5, 10, "score", None)
    assert diversify_config({"name": "mmr", "lambda": 1}).lambda_ == 1.0
    assert config.identity == {"name": "mmr", "lambda": 0.5, "depth": 10, "relevance": "score"}
    assert set(DIVERSIFIERS) == {"none", "mmr"}


@pytest.mark.parametrize("node, key, fix", [
    ({"name": "mmr", "lambda": 1.5}, "diversify.lambda", "diversify.lambda=0.7"),
    ({"name": "mmr", "lambda": -0.1}, "diversify.lambda", "diversify.lambda=0.7"),
    ({"name": "mmr", "lambda": float("nan")}, "diversify.lambda", "diversify.lambda=0.7"),
    ({"name": "mmr", "lambda": "high"}, "diversify.lambda", "diversify.lambda=0.7"),
    ({"name": "mmr", "lambda": True}, "diversify.lambda", "diversify.lambda=0.7"),
    ({"name": "mmr", "depth": 1}, "diversify.depth", "diversify.depth=20"),
    ({"name": "mmr", "relevance": "Cosine"}, "diversify.relevance", "diversify.relevance=cosine"),
    ({"name": "MMR"}, "diversify.name", "diversify.name=mmr"),
    ({"name": "mmr", "lamda": 0.5}, "diversify.lamda", "did you mean 'diversify.lambda'"),
    ({"name": "mmr", "lambda_": 0.5}, "diversify.lambda_", "diversify.lambda"),
])
def test_config_errors_name_the_key_and_their_fix_works(node, key, fix):
    with pytest.raises(ConfigError) as err:
        diversify_config(node)
    assert err.value.key == key, str(err.value)
    if fix is not None:
        assert fix in str(err.value).split("fix:")[1], str(err.value)
        if "=" in fix:  # following the fix gives a valid config
            name, value = fix.split("=")[0].split(".")[1], fix.split("=")[1]
            fixed = {**node, name: float(value) if name == "lambda" else int(value) if name == "depth" else value}
            assert diversify_config(fixed) is not None


def test_the_passage_embedder_is_its_own_then_the_dense_stages_else_an_error_with_a_fix():
    from retrieval_lab.dense import EmbedderConfig
    from retrieval_lab.diversify import passage_embedder

    dense = [(EmbedderConfig(name="minilm_l3"), "retriever.inputs.dense.embedder"), (EmbedderConfig(), "embedder")]
    assert passage_embedder(MMRConfig(), dense) == dense[0]  # the first dense stage's: its cached vectors
    own = diversify_config({"name": "mmr", "embedder": {"name": "wordllama", "batch_size": 8}})
    config, key = passage_embedder(own, dense)
    assert (config.name, config.batch_size, key) == ("wordllama", 8, "diversify.embedder")
    with pytest.raises(ConfigError) as err:
        passage_embedder(MMRConfig(), [])
    assert err.value.key == "diversify.embedder"
    assert "fix: name an embedder for it: diversify.embedder={name:minilm_l3}" in str(err.value)
    with pytest.raises(ConfigError) as err:  # the embedder node is checked as the embedder group is
        passage_embedder(diversify_config({"name": "mmr", "embedder": {"name": "x", "batch_size": 0}}), [])
    assert err.value.key == "diversify.embedder.batch_size"
