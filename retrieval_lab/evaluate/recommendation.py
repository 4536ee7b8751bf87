"""The recommendation: configurations scored on the same questions, ranked with intervals, each tested against the top
(Holm-corrected), the cheapest shown non-inferior within a margin picked, and what the questions can separate (power).
Built from the statistics in `evaluate/significance.py`; `evaluate/leaderboard.py` is its one caller that ranks
configurations, and `best`, the sweep report and calibration print from it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from retrieval_lab.errors import LabError
from retrieval_lab.evaluate.significance import (DEFAULT_MARGIN, Margin, against_top, constant, holm,
                                                 loss_upper_bound, mean_interval, minimal_detectable_difference,
                                                 noninferiority_p, paired_interval, probability_best,
                                                 questions_needed)


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
    sd = (0.0 if constant(d) else float(np.std(d, ddof=1))) if n > 1 else math.nan
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
