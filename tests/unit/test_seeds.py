"""Figures over training seeds (retrieval_lab/evaluate/seeds.py): mean ± sd over seeds, the single-seed figure, and
the paired test of the mean gain, on hand-made per-query scores with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.evaluate.seeds import gain_text, mean_sd, over_seeds, paired_p

QUERIES = [f"q{i}" for i in range(40)]


def scores(values) -> dict[str, float]:
    return dict(zip(QUERIES, values))


def test_mean_and_sd_are_over_the_seeds_with_the_first_seed_beside_them():
    rng = np.random.default_rng(1)
    per_seed = {s: scores(rng.uniform(0, 1, len(QUERIES))) for s in (3, 1, 2)}
    out = over_seeds(per_seed)
    means = [np.mean(list(per_seed[s].values())) for s in (3, 1, 2)]
    assert out["seeds"] == [3, 1, 2] and out["values"] == pytest.approx(means)
    assert out["mean"] == pytest.approx(np.mean(means)) and out["sd"] == pytest.approx(np.std(means, ddof=1))
    assert out["single"] == pytest.approx(means[0]) and out["single_seed"] == 3  # the first seed given
    assert "gain" not in out
    assert mean_sd(out) == f"{np.mean(means):.4f} ± {np.std(means, ddof=1):.4f} (3 seeds)"
    one = over_seeds({0: per_seed[3]})
    assert one["sd"] is None and mean_sd(one).endswith("(1 seed)")


def test_the_mean_gain_is_tested_over_queries_after_averaging_the_seeds():
    rng = np.random.default_rng(2)
    base = {s: scores(rng.uniform(0.3, 0.7, len(QUERIES))) for s in range(3)}
    # seed 0 gains 0.02 on every query, seeds 1 and 2 lose 0.01: a lucky single seed, no mean gain worth a claim
    shift = {0: 0.02, 1: -0.01, 2: -0.01}
    noise = {s: rng.normal(0, 0.05, len(QUERIES)) for s in range(3)}
    per_seed = {s: scores(np.array(list(base[s].values())) + shift[s] + noise[s]) for s in range(3)}
    gain = over_seeds(per_seed, base)["gain"]
    expected = [np.mean(noise[s]) + shift[s] for s in range(3)]
    assert gain["values"] == pytest.approx(expected) and gain["mean"] == pytest.approx(np.mean(expected))
    assert gain["single"] == pytest.approx(expected[0])
    order = sorted(QUERIES)  # queries in id order: the resampling is seeded, so the p is reproducible
    x = np.mean([[per_seed[s][q] for q in order] for s in range(3)], axis=0)
    y = np.mean([[base[s][q] for q in order] for s in range(3)], axis=0)
    assert gain["p"] == paired_p(x, y) == over_seeds(per_seed, base)["gain"]["p"]
    assert gain["p"] > 0.2 and gain["single_p"] < 0.05  # seed 0 alone looks significant; the mean does not
    assert gain_text(gain).startswith(f"{np.mean(expected):+.4f} ± ")


def test_a_real_gain_is_significant_and_no_difference_gives_p_one():
    rng = np.random.default_rng(3)
    base = scores(rng.uniform(0.2, 0.8, len(QUERIES)))
    per_seed = {s: scores(np.array(list(base.values())) + 0.05 + rng.normal(0, 0.01, len(QUERIES)))
                for s in range(3)}
    gain = over_seeds(per_seed, {s: base for s in range(3)})["gain"]  # a baseline no seed changes (BM25)
    assert gain["mean"] == pytest.approx(0.05, abs=0.01) and gain["p"] < 0.001
    assert over_seeds({0: base, 1: base}, {0: base, 1: base})["gain"]["p"] == 1.0


def test_seeds_that_scored_other_queries_are_refused():
    a, b = scores(np.ones(len(QUERIES))), dict(list(scores(np.ones(len(QUERIES))).items())[:-1])
    with pytest.raises(ValueError, match="seed 1 scored other queries than seed 0"):
        over_seeds({0: a, 1: b})
    with pytest.raises(ValueError, match="baseline has no score for 1 of the pipeline's queries"):
        over_seeds({0: a}, {0: b})
    with pytest.raises(ValueError, match="no figures for seeds \\[1\\]"):
        over_seeds({0: a, 1: a}, {0: a})
