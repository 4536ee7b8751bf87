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
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

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


def _constant(x: np.ndarray) -> bool:
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
    if _constant(x):  # zero variance: the mean of these questions is exact (t is undefined)
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
    if _constant(d):  # zero variance: the loss on these questions is known exactly
        return 0.0 if d.mean() > -margin else 1.0
    mean, se = _mean_and_se(d)
    return float(stats.t.sf((mean + margin) / se, len(d) - 1))


def loss_upper_bound(d, confidence: float) -> float:
    """Upper end of the one-sided `confidence` interval of the loss to the top, -mean(d)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    if len(d) < 2:
        return math.inf
    if _constant(d):
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


# -- the recommendation ----------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One configuration: its score with an interval, its difference to the top with a paired interval, tests."""
    index: int  # row of the input matrix
    name: str
    mean: float
    mean_low: float
    mean_high: float
    cost: float | None
    delta: float = 0.0
    delta_low: float = 0.0
    delta_high: float = 0.0
    p: float | None = None  # two-sided test of a difference to the top
    p_holm: float | None = None
    ni_p: float | None = None  # one-sided non-inferiority test against the margin
    ni_p_holm: float | None = None
    loss_bound: float | None = None  # one-sided upper bound of the loss at its Holm step's level
    p_best: float = 0.0

    @property
    def noninferior(self) -> bool:
        return self.ni_p_holm is not None and self.ni_p_holm < self._alpha

    def significantly_worse(self, alpha: float) -> bool:
        return self.p_holm is not None and self.p_holm < alpha

    _alpha: float = field(default=0.05, repr=False)


@dataclass
class Power:
    """What the questions can separate at the top: top against the runner-up."""
    sd: float  # standard deviation of the per-question differences top - runner-up
    detectable: float  # smallest difference detectable at 80% power, alpha 0.05
    gap: float  # observed top - runner-up
    needed: int | None  # questions that would detect `gap` at 80% power (None: no gap)
    top_group: int  # configurations whose paired 95% interval against the top contains 0 (the top included)

    @property
    def separable(self) -> bool:  # every other configuration's interval against the top excludes 0
        return self.top_group == 1


@dataclass
class Recommendation:
    metric: str
    queries: int
    alpha: float
    test: str
    margin: Margin
    margin_absolute: float
    rows: list[Row]  # best first
    pick: Row  # the cheapest shown non-inferior, else the top
    reason: str  # "non-inferior" | "none non-inferior" | "single" | "top is cheapest"
    power: Power | None

    @property
    def top(self) -> Row:
        return self.rows[0]


def order_by_mean(means) -> list[int]:
    """Rows best first; equal means keep the input order."""
    return sorted(range(len(means)), key=lambda i: -means[i])


def recommend(names: list[str], matrix, costs: list[float | None], metric: str = "metric",
              margin: Margin | None = None, alpha: float = 0.05, test: str = "randomization", trials: int = 10000,
              resamples: int = 2000, seed: int = 0) -> Recommendation:
    """Rank configurations (rows of `matrix`, questions as columns) and name the cheapest (lowest cost) whose loss
    to the top is shown smaller than `margin`; the top when none is."""
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(names) or values.shape[0] != len(costs):
        raise LabError("recommend: one row of per-question values and one cost per configuration")
    if values.shape[1] == 0:
        raise LabError("the configurations share no question: nothing to compare")
    margin = margin or Margin.parse(DEFAULT_MARGIN)
    means = values.mean(axis=1)
    order = order_by_mean(means.tolist())
    top = order[0]
    m_abs = margin.absolute(float(means[top]))
    shares = probability_best(values, resamples, seed)
    rows = []
    for i in order:
        low, high = mean_interval(values[i])
        rows.append(Row(i, names[i], float(means[i]), low, high, costs[i], p_best=float(shares[i]), _alpha=alpha))
    others = rows[1:]
    if others:
        diffs = [values[r.index] - values[top] for r in others]
        raw, adjusted = against_top(values[top], [values[r.index] for r in others], test, trials)
        ni_raw = [noninferiority_p(d, m_abs) for d in diffs]
        ni_adjusted = holm(ni_raw)
        by_p = sorted(range(len(others)), key=lambda j: ni_raw[j])
        for step, j in enumerate(by_p):  # Holm's level at this step: alpha / (hypotheses left)
            others[j].loss_bound = loss_upper_bound(diffs[j], 1 - alpha / (len(others) - step))
        for r, d, p, ph, nip, niph in zip(others, diffs, raw, adjusted, ni_raw, ni_adjusted):
            r.delta = float(d.mean())
            r.delta_low, r.delta_high = paired_interval(values[r.index], values[top])
            r.p, r.p_holm, r.ni_p, r.ni_p_holm = p, ph, nip, niph
    pick, reason = rows[0], "single" if not others else "none non-inferior"
    eligible = [r for r in others if r.noninferior and r.cost is not None]
    if eligible:
        cheapest = min(eligible, key=lambda r: (r.cost, -r.mean))
        if rows[0].cost is not None and rows[0].cost <= cheapest.cost:
            reason = "top is cheapest"
        else:
            pick, reason = cheapest, "non-inferior"
    return Recommendation(metric, values.shape[1], alpha, test, margin, m_abs, rows, pick, reason,
                          top_power(values, rows, alpha))


def top_power(values: np.ndarray, rows: list[Row], alpha: float = 0.05) -> Power | None:
    if len(rows) < 2:
        return None
    d = values[rows[0].index] - values[rows[1].index]
    n = len(d)
    sd = (0.0 if _constant(d) else float(np.std(d, ddof=1))) if n > 1 else math.nan
    gap = float(d.mean())
    group = 1 + sum(1 for r in rows[1:] if not (r.delta_high < 0))  # NaN interval (1 question): not separated
    if n < 2:
        return Power(sd, math.inf, gap, None, group)
    return Power(sd, minimal_detectable_difference(sd, n, alpha), gap, questions_needed(gap, sd, alpha), group)


def select_noninferior(margin: Margin, alpha: float = 0.05, costs: list[float | None] | None = None):
    """A selection rule for cross-validation: on the training questions, the cheapest shown non-inferior (else the
    top); without costs, the top. Cheap: the t-based tests only, no resampling."""

    def select(matrix: np.ndarray) -> int:
        means = matrix.mean(axis=1)
        top = int(order_by_mean(means.tolist())[0])
        if costs is None:
            return top
        m_abs = margin.absolute(float(means[top]))
        others = [i for i in range(len(matrix)) if i != top]
        ni = holm([noninferiority_p(matrix[i] - matrix[top], m_abs) for i in others])
        shown = [i for i, p in zip(others, ni) if p < alpha and costs[i] is not None]
        if not shown:
            return top
        best = min(shown, key=lambda i: (costs[i], -means[i]))
        return top if costs[top] is not None and costs[top] <= costs[best] else best

    return select


def power_lines(rec: Recommendation) -> list[str]:
    """The power line and its warning, as `best` prints them and a sweep's parent run records them."""
    p = rec.power
    if p is None:
        return ["power: one configuration, nothing to separate"]
    n = rec.queries
    if n < 2:
        return [f"power: {n} question: no difference can be detected; add questions"]
    needed = ("no gap to detect" if p.needed is None else f"about {p.needed:,} questions would detect it at 80% power")
    lines = [f"power: with these {n} questions, the smallest difference to the runner-up detectable at 80% power "
             f"(alpha 0.05, paired t, per-question sd {p.sd:.4f}) is {p.detectable:.4f}; the top-two gap is "
             f"{p.gap:.4f}: {needed}"]
    if not p.separable:
        below = (f"; the top-two gap ({p.gap:.4f}) is below the detectable difference ({p.detectable:.4f})"
                 if p.gap < p.detectable else "")
        lines.append(f"warning: these {n} questions cannot separate the top group: {p.top_group} configurations "
                     f"have a paired 95% interval against the top that contains 0{below}; treat them as equals, or "
                     "add questions")
    return lines
