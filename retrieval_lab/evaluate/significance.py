"""What a set of questions can decide about configurations scored on them: paired tests, intervals, non-inferiority,
power and the probability of being best. Pure functions over per-question values (one row per configuration, one
column per question, the same questions in every row).

- Intervals: Student's t over the paired per-question differences (scipy's `ttest_1samp(...).confidence_interval`).
  Chosen over the percentile bootstrap, which is narrower by sqrt((n - 1) / n) and uses normal quantiles, so it
  covers less than it claims on 20-40 questions (benchmarks/recommendation.py measures both).
- Non-inferiority: a configuration is shown not worse than the top by more than a margin M when the one-sided test
  of H0 "its mean loss to the top >= M" rejects (scipy's one-sided `ttest_1samp` against -M), with Holm's correction
  over all configurations compared, so that naming the cheapest of them is a claim made at level alpha overall.
  Absence of a significant difference is never taken for equality.
- Power: the exact power of the two-sided paired t-test from the noncentral t distribution (scipy.stats.nct); the
  smallest detectable difference and the questions needed to detect a gap are solved from it.
- Probability of being best: the share of bootstrap resamples of the questions in which a configuration has the
  highest mean (all configurations resampled on the same questions: paired).

`evaluate/recommendation.py` turns them into a recommendation (which configuration to pick, and why).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from retrieval_lab.errors import LabError

DEFAULT_MARGIN = "0.01"
POWER = 0.8


# -- tests of one configuration against another ----------------------------------------------------------------------
def randomization_test(a, b, trials: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of mean(a - b) = 0; p in (0, 1]."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, trials, 2000):
        n = min(2000, trials - start)
        signs = rng.integers(0, 2, size=(n, len(d)), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ d) / len(d) >= observed - 1e-12).sum())
    return (hits + 1) / (trials + 1)


def paired_ttest(a, b) -> float:
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2 or not np.any(d):
        return 1.0
    if np.allclose(d, d[0]):
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


TESTS = {"randomization": randomization_test, "ttest": paired_ttest}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def against_top(top, others, test: str = "randomization", trials: int = 10000) -> tuple[list[float], list[float]]:
    """Raw and Holm-adjusted p-values of each of `others` against `top`: per-query values over the same queries."""
    if test not in TESTS:
        raise LabError(f"unknown test '{test}': use one of {', '.join(TESTS)}")
    a = np.asarray(top, dtype=np.float64)
    raw = [randomization_test(a, np.asarray(b, dtype=np.float64), trials) if test == "randomization"
           else paired_ttest(a, np.asarray(b, dtype=np.float64)) for b in others]
    return raw, holm(raw)


def constant(x: np.ndarray) -> bool:
    """Equal up to rounding (per_query.csv keeps 6 decimals; `a - 0.1` differs from question to question in the
    last bits)."""
    return bool(np.ptp(x) <= 1e-12)


# -- intervals -------------------------------------------------------------------------------------------------------
def _mean_and_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean (what scipy's `ttest_1samp(x).confidence_interval()` gives, from
    `stats.t` directly: thousands of calls in the simulation); (mean, mean) when every value is equal, NaNs under 2
    values."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return math.nan, math.nan
    if constant(x):  # zero variance: the mean of these questions is exact (t is undefined)
        return float(x.mean()), float(x.mean())
    mean, se = _mean_and_se(x)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * se
    return mean - half, mean + half


def paired_interval(a, b, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of mean(a - b) over the paired questions."""
    return mean_interval(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), confidence)


# -- non-inferiority -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Margin:
    """The loss against the top that still counts as equal: absolute (0.01) or relative to the top's mean (2%)."""
    value: float
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> "Margin":
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
        if not match or float(match.group(1)) <= 0:
            raise LabError(f"--margin {text!r}: expected a positive number (absolute, e.g. 0.01) or a percentage of "
                           "the top's score (e.g. 2%)\n  fix: --margin 0.01  or  --margin 2%")
        value = float(match.group(1))
        return cls(value / 100, True) if match.group(2) else cls(value, False)

    def absolute(self, top_mean: float) -> float:
        return self.value * abs(top_mean) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}% of the top's score" if self.relative else f"{self.value:g} absolute"


def noninferiority_p(d, margin: float) -> float:
    """One-sided p of H0 "mean(d) <= -margin" (d: per-question differences candidate - top), paired t-test (scipy's
    `ttest_1samp(d, -margin, alternative="greater")`)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    if len(d) < 2:
        return 1.0
    if constant(d):  # zero variance: the loss on these questions is known exactly
        return 0.0 if d.mean() > -margin else 1.0
    mean, se = _mean_and_se(d)
    return float(stats.t.sf((mean + margin) / se, len(d) - 1))


def loss_upper_bound(d, confidence: float) -> float:
    """Upper end of the one-sided `confidence` interval of the loss to the top, -mean(d)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    if len(d) < 2:
        return math.inf
    if constant(d):
        return float(-d.mean())
    mean, se = _mean_and_se(d)
    return -mean + float(stats.t.ppf(confidence, len(d) - 1)) * se


# -- power -----------------------------------------------------------------------------------------------------------
def ttest_power(effect_size: float, n: float, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample (paired) t-test at standardized effect `effect_size` with `n` questions."""
    from scipy import stats

    if n < 2:
        return 0.0
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = abs(effect_size) * math.sqrt(n)
    power = float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))
    if math.isnan(power):  # the noncentral t's tail is not computable far out: there the test detects it surely
        return 1.0 if noncentrality > critical else 0.0
    return power


def minimal_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = POWER) -> float:
    """The smallest mean difference that `n` paired questions with per-question differences of standard deviation
    `sd` detect with probability `power` (two-sided, level `alpha`)."""
    from scipy.optimize import brentq

    if n < 2:
        return math.inf
    if sd == 0:
        return 0.0
    effect = brentq(lambda e: ttest_power(e, n, alpha) - power, 1e-9, 200.0)  # n = 2 needs about 10
    return float(effect * sd)


def questions_needed(gap: float, sd: float, alpha: float = 0.05, power: float = POWER,
                     limit: int = 10_000_000) -> int | None:
    """The fewest questions whose paired t-test detects a mean difference `gap` with probability `power`; None when
    there is no gap (equal means), or beyond `limit`."""
    if gap == 0:
        return None
    if sd == 0:
        return 2
    effect = abs(gap) / sd
    if ttest_power(effect, limit, alpha) < power:
        return None
    low, high = 2, limit  # power grows with n: bisect for the smallest n reaching it
    if ttest_power(effect, low, alpha) >= power:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if ttest_power(effect, mid, alpha) >= power:
            high = mid
        else:
            low = mid
    return high


# -- probability of being best ---------------------------------------------------------------------------------------
def probability_best(matrix, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Share of bootstrap resamples of the questions (columns) in which each configuration (row) has the highest
    mean; a tie splits the resample's share among the tied."""
    values = np.asarray(matrix, dtype=np.float64)
    k, n = values.shape
    if k == 1:
        return np.ones(1)
    rng = np.random.default_rng(seed)
    shares = np.zeros(k)
    chunk = max(1, min(resamples, 4_000_000 // max(1, k * n)))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        means = values[:, idx].mean(axis=2)  # k x b
        winners = means >= means.max(axis=0) - 1e-12
        shares += (winners / winners.sum(axis=0)).sum(axis=1)
    return shares / resamples
