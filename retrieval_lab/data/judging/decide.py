"""The comparison the judgements decide, and when to stop judging (adapted from Carterette, Allan and Sitaraman's
minimal test collections, SIGIR 2006).

The measure: each configuration's DCG@depth over the pool's units, averaged over the pool's questions, with a
unit's grade (0, 1, 2) as its gain, exactly as nDCG's numerator counts it. DCG is linear in the grades, so the
difference between two configurations is a weighted sum over units: a unit weighs 1/log2(rank+1) for every
configuration that ranks it, and it counts for a pair only when the two rank it differently (MTC's observation:
units both retrieve at the same rank, or neither retrieves, can never change the comparison).

Units nobody judged yet (the stated rule): each counts at its expected grade, estimated from the judged units that
as many configurations retrieved (a unit most configurations retrieved is more often relevant), smoothed toward all
judged units (Dirichlet pseudo-counts) and, before any judgement, toward a uniform prior over the grades; its grade
is uncertain with that estimate's variance, independently of the others. So the difference of two configurations is
known up to a normal error whose variance sums the unjudged units' (weight difference)^2 x variance.

The stopping rule: the leader is the configuration of highest expected score; a configuration could still overtake
it while the lower 95% confidence bound of (leader - it) is not above zero, the 95% simultaneous over the other
configurations (Bonferroni). When none could, the decision is "X leads Y by at least D with 95% confidence", Y the
configuration with the smallest such bound and D that bound. The confidence is over the labels not yet given, for
these questions: whether the same lead holds for other questions is what `best`'s tests answer on the re-scored
runs. Once every unit that tells the leader from a configuration is judged, that difference is exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

GRADE_VALUES = np.array([0.0, 1.0, 2.0])
CONFIDENCE = 0.95
PRIOR_STRENGTH = 2.0  # pseudo-units of the wider estimate behind each bin's estimate


@dataclass(frozen=True)
class Board:
    """The pool as the rule sees it: a DCG weight per (unit, configuration) and each unit's question."""

    weights: np.ndarray  # (units, configurations): 1/log2(rank+1) for ranks within the depth, else 0
    question: np.ndarray  # (units,) index of the unit's question
    questions: int
    names: tuple[str, ...]

    @property
    def votes(self) -> np.ndarray:
        """How many configurations retrieved each unit (the estimate's bins)."""
        return (self.weights > 0).sum(axis=1)

    @classmethod
    def from_hits(cls, hits: list[list[tuple[int, int]]], question: list[int], questions: int,
                  names: list[str], depth: int) -> "Board":
        """`hits[i]`: (configuration index, rank from 1) of unit i."""
        weights = np.zeros((len(hits), len(names)))
        for i, unit_hits in enumerate(hits):
            for c, rank in unit_hits:
                if rank <= depth:
                    weights[i, c] = max(weights[i, c], 1.0 / math.log2(rank + 1))
        return cls(weights, np.asarray(question, dtype=int), max(questions, 1), tuple(names))


def grade_estimates(board: Board, grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected grade and its variance for every unit (judged units: their grade, variance 0). `grades`: the grade
    of each unit, NaN where unjudged. The estimate of an unjudged unit: the grade distribution of the judged units
    with as many votes, with PRIOR_STRENGTH pseudo-units of all judged units' distribution, itself with
    PRIOR_STRENGTH pseudo-units of a uniform one."""
    judged = ~np.isnan(grades)
    votes = board.votes
    counts_all = np.array([(grades[judged] == g).sum() for g in GRADE_VALUES], dtype=float)
    overall = (counts_all + PRIOR_STRENGTH / len(GRADE_VALUES)) / (counts_all.sum() + PRIOR_STRENGTH)
    mean = np.where(judged, np.nan_to_num(grades), 0.0)
    variance = np.zeros(len(grades))
    for v in np.unique(votes[~judged]):
        in_bin = votes == v
        counts = np.array([(grades[in_bin & judged] == g).sum() for g in GRADE_VALUES], dtype=float)
        p = (counts + PRIOR_STRENGTH * overall) / (counts.sum() + PRIOR_STRENGTH)
        mu = float(p @ GRADE_VALUES)
        var = float(p @ (GRADE_VALUES - mu) ** 2)
        target = in_bin & ~judged
        mean[target], variance[target] = mu, var
    return mean, variance


@dataclass(frozen=True)
class Challenger:
    index: int
    name: str
    difference: float  # expected score of the leader minus this one's
    lower: float  # the lower confidence bound of that difference
    exact: bool  # every unit that tells the two apart is judged

    @property
    def could_overtake(self) -> bool:
        return self.lower <= 0


@dataclass(frozen=True)
class Decision:
    scores: np.ndarray  # expected score per configuration
    leader: int
    challengers: tuple[Challenger, ...]  # every other configuration, closest first
    judged: int
    units: int

    @property
    def contenders(self) -> list[Challenger]:
        return [c for c in self.challengers if c.could_overtake]

    @property
    def decided(self) -> bool:
        return bool(self.challengers) and not self.contenders

    @property
    def runner_up(self) -> Challenger | None:
        return min(self.challengers, key=lambda c: c.lower) if self.challengers else None

    def leader_name(self, names) -> str:
        return names[self.leader]

    def statement(self, names, metric: str) -> str:
        """One line for the console and the page."""
        leader = names[self.leader]
        if self.decided:
            y = self.runner_up
            if all(c.exact for c in self.challengers):
                return f"decided: {leader} leads {y.name} by {y.difference:.4f} {metric} (exact: every unit that " \
                       "tells them apart is judged)"
            return f"decided: {leader} leads {y.name} by at least {y.lower:.4f} {metric} with " \
                   f"{CONFIDENCE:.0%} confidence"
        names_left = ", ".join(c.name for c in self.contenders)
        return f"leader: {leader} ({self.scores[self.leader]:.4f} {metric}); could still overtake it: {names_left}"

    def to_json(self, names, metric: str) -> dict:
        return {"leader": names[self.leader], "decided": self.decided, "statement": self.statement(names, metric),
                "metric": metric, "confidence": CONFIDENCE,
                "scores": {n: round(float(s), 6) for n, s in zip(names, self.scores)},
                "contenders": [c.name for c in self.contenders],
                "runner_up": None if self.runner_up is None else {
                    "name": self.runner_up.name, "difference": round(self.runner_up.difference, 6),
                    "at_least": round(self.runner_up.lower, 6)}}


def decide(board: Board, grades: np.ndarray, confidence: float = CONFIDENCE) -> Decision:
    """The stopping rule (module docstring) for the judgements so far."""
    mean, variance = grade_estimates(board, grades)
    scores = mean @ board.weights / board.questions
    m = len(board.names)
    # the highest expected score; ties to the first configuration, so the leader does not flicker
    leader = int(np.argmax(scores))
    z = norm.ppf(1 - (1 - confidence) / max(m - 1, 1))
    lead_weights = board.weights[:, [leader]] - board.weights  # (units, configurations)
    sd = np.sqrt((lead_weights ** 2 * variance[:, None]).sum(axis=0)) / board.questions
    challengers = []
    for c in range(m):
        if c == leader:
            continue
        difference = float(scores[leader] - scores[c])
        exact = bool(sd[c] == 0)
        lower = difference if exact else difference - z * float(sd[c])
        challengers.append(Challenger(c, board.names[c], difference, lower, exact))
    challengers.sort(key=lambda ch: ch.lower)
    return Decision(scores, leader, tuple(challengers), int((~np.isnan(grades)).sum()), len(grades))


def unit_values(board: Board, grades: np.ndarray, decision: Decision | None = None) -> np.ndarray:
    """How much judging each unit would settle the comparisons still open: for each configuration that could still
    overtake the leader, the share of that difference's remaining variance the unit holds, summed. After a decision,
    the same over every comparison with the leader that is not exact yet (judging on sharpens the ranking). 0 for
    judged units and units no open comparison depends on."""
    decision = decision or decide(board, grades)
    mean, variance = grade_estimates(board, grades)
    open_ = [c.index for c in decision.contenders] or [c.index for c in decision.challengers if not c.exact]
    if not open_:
        return np.zeros(len(grades))
    lead_weights = board.weights[:, [decision.leader]] - board.weights[:, open_]
    share = lead_weights ** 2 * variance[:, None]
    total = share.sum(axis=0)
    return (share / np.where(total > 0, total, 1.0)).sum(axis=1)
