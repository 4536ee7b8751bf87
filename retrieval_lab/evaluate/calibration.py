"""How far a synthetic question set ranks configurations as real questions do.

Each question set gives a leaderboard: the same configurations, each with its metric per query. Two leaderboards
are compared by
- Kendall's tau-b between the configurations' mean scores (1: the same order; 0: unrelated);
- whether the real winner is in the synthetic set's top group: the synthetic top configuration and every one not
  significantly worse than it (paired randomization test against the top, Holm-corrected, as `retrieval-lab best`
  does), i.e. whether trusting the synthetic set could have kept the real winner;
- and the other way round, whether the synthetic winner is in the real top group (what picking by the synthetic set
  would have cost);
- the rank of a reference configuration (BM25) on each: a synthetic set written from the documents' own words
  moves BM25 up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Leaderboard:
    """Configurations scored on one question set: `per_query[i]` holds configuration `names[i]`'s metric per query,
    every configuration over the same queries in the same order."""

    label: str
    names: list[str]
    per_query: np.ndarray  # (configurations, queries)

    def __post_init__(self):
        self.per_query = np.asarray(self.per_query, dtype=np.float64)
        if self.per_query.shape[0] != len(self.names) or len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.label}: {self.per_query.shape[0]} rows of scores for {len(self.names)} names "
                             "(names must be unique)")

    @property
    def means(self) -> dict[str, float]:
        return {name: float(row.mean()) if row.size else 0.0 for name, row in zip(self.names, self.per_query)}

    def order(self) -> list[str]:
        """Best first; equal means in the order the configurations were given (the leaderboard's order)."""
        from retrieval_lab.evaluate.recommendation import order_by_mean

        return [self.names[i] for i in order_by_mean(list(self.means.values()))]

    def rank(self, name: str) -> int:
        """1 for the best configuration."""
        return self.order().index(name) + 1

    def top_group(self, alpha: float = 0.05, trials: int = 10000, test: str = "randomization") -> list[str]:
        """The top configuration and every one not significantly worse than it (paired test over the queries
        against the top, Holm-corrected over the comparisons), best first: the one leaderboard's top group."""
        from retrieval_lab.evaluate.leaderboard import rank

        rows = dict(zip(self.names, self.per_query))
        board = rank(self.names, self.label, lambda n: dict(enumerate(rows[n].tolist())), lambda n: n,
                     alpha=alpha, test=test, trials=trials)
        return board.top_group()


@dataclass
class Agreement:
    """A synthetic leaderboard against the real one."""

    label: str
    tau: float
    tau_p: float
    real_winner: str
    synthetic_winner: str
    real_winner_in_synthetic_group: bool
    synthetic_winner_in_real_group: bool
    synthetic_group: list[str]
    real_group: list[str]
    reference: str
    reference_rank_real: int
    reference_rank_synthetic: int
    configurations: int

    @property
    def reference_shift(self) -> int:
        """Places the reference moves up on the synthetic set (negative: down)."""
        return self.reference_rank_real - self.reference_rank_synthetic

    def as_dict(self) -> dict:
        return {**self.__dict__, "reference_shift": self.reference_shift}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> tuple[float, float]:
    """Kendall's tau-b of two scorings of the same configurations, and its p-value."""
    from scipy.stats import kendalltau

    names = sorted(a)
    if sorted(b) != names:
        raise ValueError(f"different configurations: {sorted(set(a) ^ set(b))}")
    result = kendalltau([a[n] for n in names], [b[n] for n in names])
    return float(result.statistic), float(result.pvalue)


def agreement(real: Leaderboard, synthetic: Leaderboard, reference: str, alpha: float = 0.05,
              trials: int = 10000, test: str = "randomization") -> Agreement:
    if reference not in real.names:
        raise ValueError(f"reference configuration {reference!r} is not among {', '.join(real.names)}")
    tau, p = kendall_tau(real.means, synthetic.means)
    real_group = real.top_group(alpha, trials, test)
    synthetic_group = synthetic.top_group(alpha, trials, test)
    real_winner, synthetic_winner = real.order()[0], synthetic.order()[0]
    return Agreement(synthetic.label, tau, p, real_winner, synthetic_winner, real_winner in synthetic_group,
                     synthetic_winner in real_group, synthetic_group, real_group, reference, real.rank(reference),
                     synthetic.rank(reference), len(real.names))
