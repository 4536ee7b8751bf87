"""Choosing a configuration by cross-validation over query folds, for datasets with test qrels only (ArguAna,
Cranfield): the mean over held-out folds estimates what the selection procedure scores on queries it never saw,
where the best test score of a grid would report the luck of the pick.

The inputs are per-query values of a metric for each candidate, computed once; `cross_validate` splits the queries
into seeded folds, picks on all folds but one the candidate with the highest mean, scores that pick on the fold left
out, and names the final choice: the candidate picked most often (ties: the higher mean over all queries). The
selection rule is a parameter: the highest mean by default, or `recommendation.select_noninferior` (the cheapest shown
non-inferior to the top), as `retrieval-lab best --cross-validate K` uses it on an experiment's logged runs.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from retrieval_lab.errors import LabError


def query_folds(query_ids, k: int = 5, seed: int = 0) -> list[list[str]]:
    """`k` folds of near-equal size (they differ by at most one query), the same for the same ids and seed whatever
    their order: the ids are sorted, shuffled with `seed`, then dealt round-robin."""
    ids = sorted(set(query_ids))
    if k < 2 or k > len(ids):
        raise LabError(f"cross-validation needs 2 <= folds <= queries, got {k} folds for {len(ids)} queries")
    random.Random(seed).shuffle(ids)
    return [sorted(ids[i::k]) for i in range(k)]


@dataclass(frozen=True)
class Fold:
    index: int
    picked: str  # the candidate with the highest mean on the other folds
    train_mean: float  # its mean on the other folds
    held_out_mean: float  # its mean on this fold: the estimate
    queries: int


@dataclass(frozen=True)
class CrossValidation:
    folds: list[Fold]
    chosen: str  # the final configuration: picked most often, ties broken by the mean over all queries
    full_means: dict[str, float]  # every candidate's mean over all queries (optimistic for the best of them)
    held_out: dict[str, float] = field(default_factory=dict)  # query -> value of the pick made without its fold

    @property
    def held_out_mean(self) -> float:
        return float(np.mean([f.held_out_mean for f in self.folds]))

    @property
    def held_out_sd(self) -> float:
        return float(np.std([f.held_out_mean for f in self.folds], ddof=1))

    @property
    def picks(self) -> Counter:
        return Counter(f.picked for f in self.folds)


def highest_mean(matrix: np.ndarray) -> int:
    return int(np.argmax(matrix.mean(axis=1)))  # first of the maxima: the earlier candidate wins a tie


def cross_validate(per_query: dict[str, dict[str, float]], folds: list[list[str]],
                   select: Callable[[np.ndarray], int] = highest_mean) -> CrossValidation:
    """`per_query`: candidate -> query id -> metric value, candidates in order of preference (an exact tie on the
    training folds goes to the earlier one, so list cheaper configurations first). Every candidate must have a value
    for every query of the folds. `select(values)` (candidates x training queries, rows in `per_query`'s order)
    returns the row it picks."""
    if not per_query:
        raise LabError("cross-validation needs at least one candidate")
    names = list(per_query)
    queries = [q for fold in folds for q in fold]
    for name in names:
        missing = [q for q in queries if q not in per_query[name]]
        if missing:
            raise LabError(f"candidate '{name}' has no value for {len(missing)} of the {len(queries)} queries "
                           f"(e.g. {missing[0]}): every candidate must be evaluated on the same queries")
    column = {q: i for i, q in enumerate(queries)}
    values = np.array([[per_query[name][q] for q in queries] for name in names], dtype=np.float64)
    results, held_out = [], {}
    for index, fold in enumerate(folds):
        held = np.zeros(len(queries), dtype=bool)
        held[[column[q] for q in fold]] = True
        best = select(values[:, ~held])
        results.append(Fold(index, names[best], float(values[best, ~held].mean()), float(values[best, held].mean()),
                            int(held.sum())))
        held_out.update({q: float(values[best, column[q]]) for q in fold})
    full = dict(zip(names, values.mean(axis=1).tolist()))
    counts = Counter(f.picked for f in results)
    chosen = max(counts, key=lambda name: (counts[name], full[name]))
    return CrossValidation(results, chosen, full, held_out)
