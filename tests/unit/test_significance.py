"""evaluate/significance.py against scipy and published references, and the recommendation's edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from retrieval_lab.errors import LabError
from retrieval_lab.evaluate.crossval import cross_validate
from retrieval_lab.evaluate.recommendation import power_lines, recommend, select_noninferior
from retrieval_lab.evaluate.significance import (Margin, loss_upper_bound, mean_interval, minimal_detectable_difference,
                                                 noninferiority_p, paired_interval, probability_best, questions_needed,
                                                 ttest_power)

# Student's sleep data (Cushny and Peebles 1905), R's `t.test(extra ~ group, data = sleep, paired = TRUE)`:
# mean difference -1.58, 95% interval [-2.4598858, -0.7001142], t = -4.0621, df = 9, p = 0.002833.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_interval_matches_the_published_sleep_example():
    low, high = paired_interval(SLEEP_1, SLEEP_2)
    assert (low, high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)


def test_mean_interval_is_scipys_t_interval_and_exact_without_variance():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 37)
    ci = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean_interval(x) == pytest.approx(ci)
    assert mean_interval([0.4] * 5) == (0.4, 0.4)  # zero variance: the mean of these questions is exact
    assert all(math.isnan(v) for v in mean_interval([0.4]))  # one question: no interval


def test_noninferiority_is_the_one_sided_t_test_against_the_margin():
    rng = np.random.default_rng(5)
    d = rng.normal(-0.004, 0.05, 200)  # a loss of 0.004 against the top
    reference = stats.ttest_1samp(d + 0.01, 0.0, alternative="greater").pvalue  # H0: mean(d) <= -0.01
    assert noninferiority_p(d, 0.01) == pytest.approx(reference)
    # the test rejects at 5% exactly when the one-sided 95% upper bound of the loss is below the margin
    for margin in (0.002, 0.005, 0.008, 0.012, 0.02):
        assert (noninferiority_p(d, margin) < 0.05) == (loss_upper_bound(d, 0.95) < margin)
    assert noninferiority_p([-0.02] * 10, 0.01) == 1.0 and noninferiority_p([-0.005] * 10, 0.01) == 0.0
    assert noninferiority_p([0.1], 0.01) == 1.0  # one question shows nothing


@pytest.mark.parametrize("effect, n", [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_questions_needed_match_published_sample_sizes(effect, n):
    # G*Power 3 (Faul et al. 2007), "t tests - means: difference from constant (one sample case)", two tails,
    # alpha 0.05, power 0.80: total sample size 199, 34 and 15 for d = 0.2, 0.5, 0.8 (Cohen's small/medium/large)
    assert questions_needed(effect, 1.0) == n
    assert ttest_power(effect, n) >= 0.8 > ttest_power(effect, n - 1)


def test_power_agrees_with_scipys_monte_carlo_power():
    rng = np.random.default_rng(0)
    simulated = stats.power(lambda x: stats.ttest_1samp(x, 0.0, axis=-1), lambda size: rng.normal(0.5, 1.0, size),
                            n_observations=20, significance=0.05, n_resamples=20000, vectorized=True).power
    assert ttest_power(0.5, 20) == pytest.approx(float(simulated), abs=0.01)
    assert ttest_power(0.5, 34) == pytest.approx(0.8077775, abs=1e-6)  # G*Power's "actual power"


def test_minimal_detectable_difference_is_where_power_reaches_80_percent():
    mdd = minimal_detectable_difference(0.12, 40)
    assert ttest_power(mdd / 0.12, 40) == pytest.approx(0.8, abs=1e-6)
    assert mdd == pytest.approx(0.12 * 0.4529, abs=1e-3)  # d 0.4529: where the exact power at n 40 reaches 0.8
    assert minimal_detectable_difference(0.12, 80) < mdd  # more questions detect less
    assert minimal_detectable_difference(0.0, 40) == 0.0 and minimal_detectable_difference(0.1, 1) == math.inf
    assert questions_needed(0.0, 0.1) is None and questions_needed(0.05, 0.0) == 2


def test_probability_best_matches_the_normal_approximation_and_splits_ties():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 400)
    b = a - rng.normal(0.01, 0.1, 400)
    d = a - b
    share = probability_best(np.vstack([a, b]), resamples=4000)
    assert share.sum() == pytest.approx(1.0)
    assert share[0] == pytest.approx(stats.norm.cdf(d.mean() / stats.sem(d)), abs=0.03)
    assert probability_best(np.vstack([a, a, a - 1])).tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert probability_best(np.vstack([a])).tolist() == [1.0]


def test_margin_parses_absolute_and_relative_forms():
    assert Margin.parse("0.01") == Margin(0.01, False) and Margin.parse("2%") == Margin(0.02, True)
    assert Margin.parse("2%").absolute(0.5) == pytest.approx(0.01)
    for bad in ("-0.01", "x", "0", "1%%"):
        with pytest.raises(LabError, match="fix: --margin 0.01"):
            Margin.parse(bad)


def _matrix(rows):
    return np.array(rows, dtype=np.float64)


def test_the_cheapest_configuration_shown_non_inferior_is_recommended():
    rng = np.random.default_rng(7)
    top = rng.uniform(0.2, 0.9, 400)
    close = top - 0.002 + rng.normal(0, 0.01, 400)  # loses 0.002, tightly: shown within 0.01
    weak = top - 0.15 + rng.normal(0, 0.05, 400)  # cheapest, but far worse
    rec = recommend(["top", "close", "weak"], _matrix([top, close, weak]), [10.0, 1.0, 0.1], trials=1000)
    assert [r.name for r in rec.rows] == ["top", "close", "weak"]
    assert rec.pick.name == "close" and rec.reason == "non-inferior"
    assert rec.rows[1].noninferior and not rec.rows[2].noninferior and rec.rows[2].significantly_worse(0.05)
    assert rec.rows[1].loss_bound < 0.01
    # the old rule's case: not significantly worse, but nowhere near shown equal: the top is recommended
    few = rec_few = recommend(["top", "cheap"], _matrix([top[:40], top[:40] - 0.02 + rng.normal(0, 0.15, 40)]),
                              [10.0, 0.1], trials=1000)
    assert not few.rows[1].significantly_worse(0.05) and not few.rows[1].noninferior
    assert rec_few.pick.name == "top" and rec_few.reason == "none non-inferior"


def test_a_relative_margin_scales_with_the_top_score():
    rng = np.random.default_rng(2)
    top = rng.uniform(0.4, 0.6, 300)
    other = top - 0.006 + rng.normal(0, 0.005, 300)
    assert recommend(["a", "b"], _matrix([top, other]), [2.0, 1.0], margin=Margin.parse("0.5%"),
                     trials=200).pick.name == "a"  # 0.5% of 0.5: 0.0025, below the loss
    assert recommend(["a", "b"], _matrix([top, other]), [2.0, 1.0], margin=Margin.parse("3%"),
                     trials=200).pick.name == "b"  # 3%: 0.015


def test_one_configuration():
    rec = recommend(["only"], _matrix([[0.1, 0.5, 0.9]]), [1.0])
    assert rec.pick.name == "only" and rec.reason == "single" and rec.power is None
    assert rec.rows[0].p_best == 1.0 and rec.rows[0].mean_low < 0.5 < rec.rows[0].mean_high
    assert power_lines(rec) == ["power: one configuration, nothing to separate"]


def test_two_questions():
    rec = recommend(["a", "b"], _matrix([[0.9, 0.7], [0.8, 0.5]]), [2.0, 1.0], trials=100)
    b = rec.rows[1]
    assert b.delta == pytest.approx(-0.15) and b.delta_low < -0.15 < b.delta_high  # df 1: a very wide interval
    assert rec.pick.name == "a" and not b.noninferior
    assert rec.power.detectable > 0.5 and rec.power.top_group == 2 and not rec.power.separable
    assert "cannot separate the top group" in power_lines(rec)[1]


def test_all_ties():
    same = [0.3, 0.6, 0.9, 0.0]
    rec = recommend(["a", "b", "c"], _matrix([same, same, same]), [3.0, 1.0, 2.0], trials=100)
    assert [r.name for r in rec.rows] == ["a", "b", "c"]  # equal means keep their order
    assert all(r.delta == 0 and (r.delta_low, r.delta_high) == (0.0, 0.0) and r.p == 1.0 for r in rec.rows[1:])
    assert rec.pick.name == "b" and rec.reason == "non-inferior"  # identical on every question: the cheapest
    assert rec.rows[0].p_best == pytest.approx(1 / 3)
    assert rec.power.gap == 0 and rec.power.needed is None and "no gap to detect" in power_lines(rec)[0]


def test_zero_variance_of_the_differences():
    top = np.array([0.2, 0.5, 0.7, 0.9, 0.4, 0.3, 0.8, 0.6, 0.5, 0.35])  # 10 questions: sign flips can reject
    rec = recommend(["top", "minus"], _matrix([top, top - 0.1]), [2.0, 1.0], trials=100)
    minus = rec.rows[1]
    assert (minus.delta_low, minus.delta_high) == pytest.approx((-0.1, -0.1))  # a constant difference: exact
    assert minus.significantly_worse(0.05) and not minus.noninferior and rec.pick.name == "top"
    assert rec.power.detectable == 0.0 and rec.power.needed == 2 and rec.power.separable


def test_recommend_needs_aligned_input():
    with pytest.raises(LabError):
        recommend(["a", "b"], _matrix([[0.1, 0.2]]), [1.0, 2.0])
    with pytest.raises(LabError, match="no question"):
        recommend(["a"], np.zeros((1, 0)), [1.0])


def test_cross_validation_with_the_non_inferiority_rule():
    queries = [f"q{i}" for i in range(60)]
    rng = np.random.default_rng(4)
    top = rng.uniform(0.3, 0.9, 60)
    per_query = {"cheap": dict(zip(queries, (top - 0.001).tolist())), "top": dict(zip(queries, top.tolist()))}
    folds = [queries[i::3] for i in range(3)]
    chosen = cross_validate(per_query, folds, select_noninferior(Margin(0.01), 0.05, [0.1, 5.0]))
    assert chosen.picks == {"cheap": 3}  # shown within 0.01 on every pair of folds, and cheaper
    assert cross_validate(per_query, folds).picks == {"top": 3}  # the highest mean
    assert set(chosen.held_out) == set(queries) and chosen.held_out["q0"] == pytest.approx(top[0] - 0.001)
