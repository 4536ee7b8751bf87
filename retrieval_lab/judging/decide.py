"""The comparison the judgements decide, and when to stop judging (adapted from Carterette, Allan and Sitaraman's
minimal test collections, SIGIR 2006).

The measure: each configuration's DCG@depth over the documents it returns (each document once, at its first unit),
averaged over the pool's questions, with that unit's grade (0, 1, 2) as the gain, as nDCG's numerator counts it. DCG is linear in the grades, so the
difference between two configurations is a weighted sum over units: a unit weighs 1/log2(rank+1) for every
configuration that ranks it, and it counts for a pair only when the two rank it differently (MTC's observation:
units both retrieve at the same rank, or neither retrieves, can never change the comparison).

Units nobody judged yet (the stated rule): each counts at its expected grade, estimated from the judged units alike
in how many configurations retrieved the same document for the question (a document most configurations retrieved
is more often relevant) and in the best rank it got (1, 2-3, 4 and below), smoothed toward the judged units with as
many configurations, those toward all judged units, and those toward a uniform prior over the grades (Dirichlet
pseudo-counts at each level). The difference of two configurations is then known up to a normal error with two
parts: each unjudged unit's own grade (variance: its estimate's, independently), and the estimate itself, shared by
every unit of its kind (the variance of a Dirichlet mean, times the squared sum of those units' weight differences),
so that a thousand unjudged units of one kind are not mistaken for a thousand independent coin flips.

The stopping rule is certain, from bounds (MTC's): the leader is the configuration of highest expected score; for
each other configuration, the worst case of (leader - it) over every grade the unjudged units could still get is
a sum of per-unit worst cases, DCG being linear in each unit's grade (a unit the leader ranks higher counts at grade
0, one the other ranks higher at the highest grade; units of one document are bounded apart, which only widens the
bound). A configuration could still overtake the leader while that worst case is not above zero. When none could,
the decision is "X leads every other configuration on the judged pool, whatever the unjudged units turn out to be":
it can never be wrong about the complete pool. It holds for these questions: whether the same lead holds for other
questions is what `best`'s tests answer on the re-scored runs.

The estimates above give only a forecast, labelled as one: "likely leader" once the lower 95% confidence bound
of (leader - it) is above zero for every other configuration (Bonferroni over them). It often names the complete
pool's winner long before the bounds decide, but not always: FORECAST_NOTE says how often it was wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

GRADE_VALUES = np.array([0.0, 1.0, 2.0])
CONFIDENCE = 0.95
# measured by benchmarks/judging_order.py (BENCHMARKS.md "Judging order")
FORECAST_NOTE = "in 120 simulated sessions it named a leader other than the complete pool's winner 10 times"
PRIOR_STRENGTH = 2.0  # pseudo-units of the wider estimate behind each bin's estimate


@dataclass(frozen=True)
class Board:
    """The pool as the rule sees it: a DCG weight per (unit, configuration) and each unit's question."""

    weights: np.ndarray  # (units, configurations): 1/log2(rank+1) for ranks within the depth, else 0
    question: np.ndarray  # (units,) index of the unit's question
    questions: int
    names: tuple[str, ...]
    kind: np.ndarray  # (units, 2): configurations that retrieved the unit's document for its question; rank bucket

    @classmethod
    def from_hits(cls, hits: list[list[tuple[int, int]]], question: list[int], questions: int,
                  names: list[str], depth: int, documents: list[str] | None = None) -> "Board":
        """`hits[i]`: (configuration index, rank from 1) of unit i; `documents[i]`: its document, else each unit is
        its own document. A configuration ranks documents as the lab scores it (pipeline DocumentsStep): each
        document once, at its first unit, ranks counted over documents; that unit's grade is its gain. Units of one
        document share its votes."""
        documents = documents or [str(i) for i in range(len(hits))]
        weights = np.zeros((len(hits), len(names)))
        listed: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (configuration, question) -> (rank, unit)
        for i, unit_hits in enumerate(hits):
            for c, rank in unit_hits:
                listed.setdefault((c, question[i]), []).append((rank, i))
        for (c, _), ranked in listed.items():
            seen: set[str] = set()
            for rank, i in sorted(ranked):
                if rank > depth or documents[i] in seen:
                    continue
                seen.add(documents[i])
                weights[i, c] = 1.0 / math.log2(len(seen) + 1)
        by_document: dict[tuple[int, str], set[int]] = {}
        for i, unit_hits in enumerate(hits):
            by_document.setdefault((question[i], documents[i]), set()).update(c for c, _ in unit_hits)
        votes = [len(by_document[(question[i], documents[i])]) for i in range(len(hits))]
        best = [min((r for _, r in h), default=depth + 1) for h in hits]
        bucket = [0 if r <= 1 else 1 if r <= 3 else 2 for r in best]
        return cls(weights, np.asarray(question, dtype=int), max(questions, 1), tuple(names),
                   np.array(list(zip(votes, bucket)), dtype=int).reshape(len(hits), 2))


@dataclass(frozen=True)
class Estimates:
    mean: np.ndarray  # expected grade per unit (a judged unit: its grade)
    variance: np.ndarray  # variance of an unjudged unit's own grade (0 when judged)
    kind: np.ndarray  # per unit, the index of the estimate it shares (-1: judged)
    kind_variance: np.ndarray  # per estimate, the variance of its mean


def _dirichlet(counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    return (counts + PRIOR_STRENGTH * prior) / (counts.sum() + PRIOR_STRENGTH)


def grade_estimates(board: Board, grades: np.ndarray) -> Estimates:
    """Each unit's expected grade and uncertainty (module docstring). `grades`: NaN where unjudged."""
    judged = ~np.isnan(grades)
    buckets, levels = 3, len(GRADE_VALUES)
    kind_id = board.kind[:, 0] * buckets + board.kind[:, 1]
    kinds = (int(board.kind[:, 0].max(initial=0)) + 1) * buckets
    g = np.nan_to_num(grades).astype(int)
    by_kind = np.bincount(kind_id[judged] * levels + g[judged], minlength=kinds * levels).reshape(-1, buckets, levels)
    by_votes = by_kind.sum(axis=1)  # (votes, grades)
    uniform = np.full(levels, 1 / levels)
    overall = (by_votes.sum(axis=0) + PRIOR_STRENGTH * uniform) / (by_votes.sum() + PRIOR_STRENGTH)
    p_votes = (by_votes + PRIOR_STRENGTH * overall) / (by_votes.sum(axis=1, keepdims=True) + PRIOR_STRENGTH)
    p_kind = (by_kind + PRIOR_STRENGTH * p_votes[:, None, :]) / (by_kind.sum(axis=2, keepdims=True) + PRIOR_STRENGTH)
    p_kind = p_kind.reshape(-1, levels)
    mu = p_kind @ GRADE_VALUES
    var = p_kind @ GRADE_VALUES ** 2 - mu ** 2
    n = by_kind.reshape(-1, levels).sum(axis=1) + PRIOR_STRENGTH
    mean = np.where(judged, np.nan_to_num(grades), mu[kind_id])
    variance = np.where(judged, 0.0, var[kind_id])
    return Estimates(mean, variance, np.where(judged, -1, kind_id), var / (n + 1))


def difference_sd(estimates: Estimates, differences: np.ndarray, questions: int) -> np.ndarray:
    """The standard error of each column's weighted sum of grades over the unjudged units (module docstring):
    `differences` (units, k), weight differences per comparison."""
    own = (differences ** 2 * estimates.variance[:, None]).sum(axis=0)
    unjudged = estimates.kind >= 0
    sums = np.zeros((len(estimates.kind_variance), differences.shape[1]))
    np.add.at(sums, estimates.kind[unjudged], differences[unjudged])
    shared = (sums ** 2 * estimates.kind_variance[:, None]).sum(axis=0)
    return np.sqrt(own + shared) / questions


@dataclass(frozen=True)
class Challenger:
    index: int
    name: str
    difference: float  # expected score of the leader minus this one's
    lower: float  # the worst case of that difference over every grade of the unjudged units
    upper: float  # its best case
    likely_lower: float  # the forecast: the lower confidence bound of the difference under the grade estimates
    exact: bool  # every unit that tells the two apart is judged

    @property
    def could_overtake(self) -> bool:
        return self.lower <= 0

    @property
    def likely_overtakes(self) -> bool:
        return self.likely_lower <= 0


@dataclass(frozen=True)
class Decision:
    scores: np.ndarray  # expected score per configuration
    leader: int
    challengers: tuple[Challenger, ...]  # every other configuration, closest (smallest worst case) first
    judged: int
    units: int
    estimates: Estimates | None = None  # what the scores were computed from (unit_values reuses them)

    @property
    def contenders(self) -> list[Challenger]:
        return [c for c in self.challengers if c.could_overtake]

    @property
    def decided(self) -> bool:
        """Certain: the leader is ahead of every other configuration whatever the unjudged units' grades."""
        return bool(self.challengers) and not self.contenders

    @property
    def likely(self) -> bool:
        """The forecast: the leader stays ahead of every other one at the confidence, under the grade estimates."""
        return bool(self.challengers) and not any(c.likely_overtakes for c in self.challengers)

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
            return f"decided: {leader} leads every other configuration on the judged pool, whatever the unjudged " \
                   f"units turn out to be (by at least {y.lower:.4g} {metric}, over {y.name})"
        names_left = ", ".join(c.name for c in self.contenders)
        forecast = f"; forecast: {leader} is the likely leader (not certain: {FORECAST_NOTE})" if self.likely else ""
        return f"leader: {leader} ({self.scores[self.leader]:.4f} {metric}); could still overtake it: " \
               f"{names_left}{forecast}"

    def to_json(self, names, metric: str) -> dict:
        return {"leader": names[self.leader], "decided": self.decided, "likely": self.likely,
                "statement": self.statement(names, metric), "metric": metric, "confidence": CONFIDENCE,
                "scores": {n: round(float(s), 6) for n, s in zip(names, self.scores)},
                "contenders": [c.name for c in self.contenders],
                "runner_up": None if self.runner_up is None else {
                    "name": self.runner_up.name, "difference": round(self.runner_up.difference, 6),
                    "at_least": round(self.runner_up.lower, 6)}}


def bounds(board: Board, grades: np.ndarray, leader: int) -> tuple[np.ndarray, np.ndarray]:
    """The worst and best case of (leader - each configuration) over every grade of the unjudged units. DCG is
    linear in each unit's grade, so each unit reaches its extreme on its own: a unit the leader weighs more counts
    at grade 0 in the worst case, one the other configuration weighs more at the highest grade (MTC's bounds)."""
    lead_weights = board.weights[:, [leader]] - board.weights  # (units, configurations)
    judged = ~np.isnan(grades)
    known = np.nan_to_num(grades)[judged] @ lead_weights[judged]
    top = GRADE_VALUES.max()
    open_ = lead_weights[~judged]
    lower = known + top * np.minimum(open_, 0).sum(axis=0)
    upper = known + top * np.maximum(open_, 0).sum(axis=0)
    return lower / board.questions, upper / board.questions


def decide(board: Board, grades: np.ndarray, confidence: float = CONFIDENCE) -> Decision:
    """The stopping rule (module docstring) for the judgements so far."""
    estimates = grade_estimates(board, grades)
    scores = estimates.mean @ board.weights / board.questions
    m = len(board.names)
    # the highest expected score; ties to the first configuration, so the leader does not flicker. Any
    # configuration whose worst case beats every other one has the highest expected score too (the expected grades
    # are one of the cases), so the certain leader, where there is one, is this one.
    leader = int(np.argmax(scores))
    z = norm.ppf(1 - (1 - confidence) / max(m - 1, 1))
    lead_weights = board.weights[:, [leader]] - board.weights  # (units, configurations)
    sd = difference_sd(estimates, lead_weights, board.questions)
    lower, upper = bounds(board, grades, leader)
    challengers = []
    for c in range(m):
        if c == leader:
            continue
        difference = float(scores[leader] - scores[c])
        exact = bool(np.isclose(lower[c], upper[c], rtol=0, atol=1e-12))
        likely_lower = difference if exact else difference - z * float(sd[c])
        challengers.append(Challenger(c, board.names[c], difference, float(lower[c]), float(upper[c]),
                                      likely_lower, exact))
    challengers.sort(key=lambda ch: ch.lower)
    return Decision(scores, leader, tuple(challengers), int((~np.isnan(grades)).sum()), len(grades), estimates)


def unit_values(board: Board, grades: np.ndarray, decision: Decision | None = None) -> np.ndarray:
    """How much judging each unit is expected to raise the worst case of (leader - configuration), summed over the
    configurations that could still overtake the leader (MTC's choice: the unit that tightens the bounds most). A
    unit the leader weighs more by w raises it by w times its expected grade; one the other weighs more, by w times
    (highest grade - expected grade). After a decision, the same over every comparison with the leader that is not
    exact yet (judging on sharpens the ranking). 0 for judged units and units no open comparison depends on."""
    decision = decision or decide(board, grades)
    estimates = decision.estimates or grade_estimates(board, grades)
    open_ = [c.index for c in decision.contenders] or [c.index for c in decision.challengers if not c.exact]
    if not open_:
        return np.zeros(len(grades))
    lead_weights = board.weights[:, [decision.leader]] - board.weights[:, open_]
    mean = estimates.mean[:, None]
    gain = np.where(lead_weights > 0, lead_weights * mean, -lead_weights * (GRADE_VALUES.max() - mean))
    return np.where(np.isnan(grades), gain.sum(axis=1), 0.0)
