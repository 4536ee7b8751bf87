"""The one leaderboard: configurations ranked by a metric over the questions they share, each compared with the top.

`rank(entries, ...)` pairs every configuration's per-question values on the same questions and hands them to
`recommendation.recommend` (means with intervals, the paired difference to the top, Holm-corrected tests,
non-inferiority, P(best), power). What it returns, a `Board`, holds the caller's entries best first beside the
recommendation's rows, one row per entry. `retrieval-lab best`, the sweep's leaderboard and calibration rank with it
and print their own tables from the rows; no one else orders configurations or tests them against the top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Mapping, Sequence, TypeVar

import numpy as np

from retrieval_lab.evaluate.recommendation import Recommendation, Row, recommend
from retrieval_lab.evaluate.significance import Margin

T = TypeVar("T")


class DifferentQuestions(ValueError):
    """Some entries lack questions that others were evaluated on: their means are not comparable."""

    def __init__(self, missing: list[tuple[object, list[str]]], questions: int):
        self.missing, self.questions = missing, questions  # (entry, its missing questions sorted), all questions
        super().__init__(f"{len(missing)} configurations lack some of the {questions} questions")


@dataclass
class Board(Generic[T]):
    recommendation: Recommendation
    entries: list[T]  # best first: entries[i] is recommendation.rows[i]

    @property
    def rows(self) -> list[Row]:
        return self.recommendation.rows

    def row_of(self, entry: T) -> Row:
        return self.rows[next(i for i, e in enumerate(self.entries) if e is entry)]

    def top_group(self, alpha: float | None = None) -> list[T]:
        """The top entry and every one not significantly worse than it (Holm-corrected, at `alpha`, by default the
        recommendation's), best first."""
        alpha = self.recommendation.alpha if alpha is None else alpha
        return [e for e, row in zip(self.entries, self.rows) if row is self.rows[0] or not row.significantly_worse(alpha)]


def rank(entries: Sequence[T], metric: str, values: Callable[[T], Mapping[str, float]],
         name: Callable[[T], str] = str, cost: Callable[[T], float | None] = lambda e: None,
         margin: Margin | None = None, alpha: float = 0.05, test: str = "randomization", trials: int = 10000,
         resamples: int = 2000) -> Board[T]:
    """Rank `entries` by their mean of `values(entry)` (question -> value of `metric`) over the questions they all
    share; raises DifferentQuestions when an entry lacks a question another has (its mean would not compare)."""
    per_query = [values(e) for e in entries]
    every = set().union(*per_query) if per_query else set()
    missing = [(e, sorted(every - set(v))) for e, v in zip(entries, per_query) if every - set(v)]
    if missing or not every:  # no question at all: nothing to compare
        raise DifferentQuestions(missing, len(every))
    qids = sorted(every)
    matrix = np.array([[v[q] for q in qids] for v in per_query], dtype=np.float64).reshape(len(entries), len(qids))
    rec = recommend([name(e) for e in entries], matrix, [cost(e) for e in entries], metric, margin, alpha, test,
                    trials, resamples)
    return Board(rec, [entries[row.index] for row in rec.rows])
