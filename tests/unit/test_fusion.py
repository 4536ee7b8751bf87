"""Fusion math against hand-computed cases, config validation, and the hybrid retriever replaying cached runs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval_lab.errors import ConfigError
from retrieval_lab.fusion import FUSIONS, NORMALIZATIONS, FusionConfig, convex, fuse, normalize, rrf
from retrieval_lab.types import Run

A = Run({"q": [("d1", 3.0), ("d2", 2.0), ("d3", 1.0)]})
B = Run({"q": [("d2", 0.9), ("d4", 0.5), ("d1", 0.1)]})


def as_dict(run: Run, qid: str = "q") -> dict[str, float]:
    return dict(run[qid])


def order(run: Run, qid: str = "q") -> list[str]:
    return [d for d, _ in run[qid]]


def test_rrf_k60_by_hand():
    fused = rrf([A, B], [1.0, 1.0], k=60)
    expected = {"d1": 1 / 61 + 1 / 63, "d2": 1 / 62 + 1 / 61, "d3": 1 / 63, "d4": 1 / 62}
    assert as_dict(fused) == pytest.approx(expected, abs=1e-12)
    assert order(fused) == ["d2", "d1", "d4", "d3"]


def test_rrf_weights_and_small_k_by_hand():
    fused = rrf([A, B], [2.0, 1.0], k=1)
    # d1: 2/2 + 1/4; d2: 2/3 + 1/2; d3: 2/4; d4: 1/3
    assert as_dict(fused) == pytest.approx({"d1": 1.25, "d2": 7 / 6, "d3": 0.5, "d4": 1 / 3})
    assert order(fused) == ["d1", "d2", "d3", "d4"]


def test_convex_minmax_by_hand():
    # A -> d1 1, d2 .5, d3 0; B -> d2 1, d4 .5, d1 0; a run's missing doc gets its floor (0)
    fused = convex([A, B], [0.5, 0.5], "minmax")
    assert as_dict(fused) == pytest.approx({"d1": 0.5, "d2": 0.75, "d3": 0.0, "d4": 0.25})
    assert order(fused) == ["d2", "d1", "d4", "d3"]
    fused = convex([A, B], [0.8, 0.2], "minmax")
    assert as_dict(fused) == pytest.approx({"d1": 0.8, "d2": 0.6, "d3": 0.0, "d4": 0.1})
    assert order(fused) == ["d1", "d2", "d4", "d3"]


def test_convex_zscore_by_hand():
    z = math.sqrt(1.5)  # (3 - 2) / sqrt(2/3): population std
    fused = convex([A, B], [0.5, 0.5], "zscore")
    # missing docs take the run's lowest z (-z), not the mean (0)
    assert as_dict(fused) == pytest.approx({"d1": 0.0, "d2": z / 2, "d3": -z, "d4": -z / 2})
    assert order(fused) == ["d2", "d1", "d4", "d3"]


def test_convex_max_and_rank_by_hand():
    fused = convex([A, B], [0.5, 0.5], "max")
    # A/3: 1, 2/3, 1/3; B/.9: 1, 5/9, 1/9; missing = 0
    assert as_dict(fused) == pytest.approx({"d1": (1 + 1 / 9) / 2, "d2": (2 / 3 + 1) / 2, "d3": (1 / 3) / 2,
                                            "d4": (5 / 9) / 2})
    fused = convex([A, B], [0.5, 0.5], "rank")
    assert as_dict(fused) == pytest.approx({"d1": (1 + 1 / 3) / 2, "d2": (2 / 3 + 1) / 2, "d3": (1 / 3) / 2,
                                            "d4": (2 / 3) / 2})


@pytest.mark.parametrize("method,scores,expected", [
    ("minmax", [5, 3, 1], [1, 0.5, 0]),
    ("minmax", [2, 2], [1, 1]),  # degenerate: all equal -> best
    ("zscore", [4, 2, 0], [math.sqrt(1.5), 0, -math.sqrt(1.5)]),
    ("zscore", [7], [0]),
    ("max", [4, 2, 1], [1, 0.5, 0.25]),
    ("sum", [3, 1], [0.75, 0.25]),
    ("rank", [9, 9, 1, 0], [1, 1, 0.5, 0.25]),  # ties share the better rank
])
def test_normalizations(method, scores, expected):
    assert normalize(np.array(scores, dtype=float), method) == pytest.approx(expected)


def test_alpha_is_the_first_inputs_weight_and_extremes_reproduce_an_input():
    only_a = fuse([A, B], FusionConfig(name="convex", alpha=1.0))
    assert order(only_a)[:3] == order(A)
    only_b = fuse([A, B], FusionConfig(name="convex", alpha=0.0))
    assert order(only_b)[:3] == order(B)


def test_query_missing_from_one_run_and_three_inputs():
    c = Run({"q": [("d3", 10.0)], "q2": [("d9", 1.0)]})
    fused = fuse([A, B, c], FusionConfig(name="rrf", alpha=None, k=0))
    # default weights 1/3 each; d3: (1/3 + 0 + 1/1) / 3; d2: (1/2 + 1/1) / 3; d1: (1/1 + 1/3) / 3
    assert as_dict(fused)["d3"] == pytest.approx(4 / 9) and as_dict(fused)["d2"] == pytest.approx(0.5)
    assert order(fused)[0] == "d2"
    assert order(fused, "q2") == ["d9"]
    fused = fuse([A, B, c], FusionConfig(name="convex", alpha=None, weights=[1, 1, 2]))
    # minmax: A d1 1, d2 .5, d3 0; B d2 1, d4 .5, d1 0; C d3 1 (a one-document list is its best), others 0
    assert as_dict(fused) == pytest.approx({"d1": 1.0, "d2": 1.5, "d3": 2.0, "d4": 0.5})


def test_single_input_passes_through():
    assert fuse([A], FusionConfig()) is A


def test_ties_keep_first_seen_order():
    x = Run({"q": [("a", 1.0), ("b", 0.0)]})
    y = Run({"q": [("b", 1.0), ("a", 0.0)]})
    assert order(fuse([x, y], FusionConfig(name="convex", alpha=0.5))) == ["a", "b"]


@pytest.mark.parametrize("config,inputs,key", [
    (FusionConfig(name="borda"), 2, "retriever.fusion.name"),
    (FusionConfig(normalization="l2"), 2, "retriever.fusion.normalization"),
    (FusionConfig(alpha=1.5), 2, "retriever.fusion.alpha"),
    (FusionConfig(weights=[1.0]), 2, "retriever.fusion.weights"),
    (FusionConfig(weights=[-1.0, 2.0]), 2, "retriever.fusion.weights"),
    (FusionConfig(alpha=0.3), 3, "retriever.fusion.alpha"),
    (FusionConfig(name="rrf", k=-1), 2, "retriever.fusion.k"),
])
def test_bad_fusion_config_names_the_key(config, inputs, key):
    with pytest.raises(ConfigError) as err:
        config.validate(inputs)
    assert err.value.key == key


def test_registries_are_string_keyed():
    assert set(FUSIONS) == {"rrf", "convex"}
    assert {"minmax", "zscore", "max", "sum", "rank"} <= set(NORMALIZATIONS)
