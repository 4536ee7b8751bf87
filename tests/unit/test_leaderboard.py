"""The one leaderboard (evaluate/leaderboard.py): `best`, the sweep's report and calibration rank through it."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.commands.best import Candidate, ranking_from
from retrieval_lab.evaluate.calibration import Leaderboard
from retrieval_lab.evaluate.leaderboard import DifferentQuestions, rank
from retrieval_lab.evaluate.significance import against_top
from retrieval_lab.sweep.report import Row, recommendation_of

QUESTIONS = [f"q{i:02d}" for i in range(30)]


def scores(seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, len(QUESTIONS))
    shifts = {"a": 0.0, "b": -0.01, "c": -0.15, "d": 0.03, "e": -0.3}
    return {name: dict(zip(QUESTIONS, (base + s + rng.normal(0, 0.05, len(QUESTIONS))).tolist()))
            for name, s in shifts.items()}


def test_rank_orders_entries_by_their_mean_with_one_row_each():
    values = scores()
    board = rank(list(values), "ndcg_at_10", values.get, trials=500)
    means = {n: np.mean(list(v.values())) for n, v in values.items()}
    assert board.entries == sorted(values, key=lambda n: -means[n])
    assert [row.name for row in board.rows] == board.entries
    assert board.row_of("c").mean == pytest.approx(means["c"]) and board.recommendation.queries == 30
    assert board.top_group() == [n for n in board.entries if n not in ("c", "e")]


def test_the_top_group_is_the_top_and_those_not_significantly_worse():
    values = scores(1)
    board = rank(list(values), "m", values.get, trials=2000)
    top = board.entries[0]
    _, adjusted = against_top(list(values[top].values()), [list(values[n].values()) for n in board.entries[1:]],
                              trials=2000)
    assert board.top_group() == [top, *(n for n, p in zip(board.entries[1:], adjusted) if p >= 0.05)]
    assert board.top_group(alpha=1e-9) == board.entries  # nothing is worse at that level


def test_entries_on_different_questions_are_named_with_what_they_lack():
    values = scores()
    values["b"] = {q: v for q, v in values["b"].items() if q not in ("q03", "q07")}
    with pytest.raises(DifferentQuestions) as err:
        rank(list(values), "m", values.get)
    assert err.value.missing == [("b", ["q03", "q07"])] and err.value.questions == 30
    with pytest.raises(DifferentQuestions) as err:
        rank(["x", "y"], "m", lambda n: {})
    assert err.value.missing == [] and err.value.questions == 0


def test_best_the_sweep_and_calibration_rank_alike():
    values = scores(2)
    names = list(values)
    best = ranking_from([Candidate(f"id-{n}", n, 0.0, 1.0, values[n]) for n in names], "ndcg_at_10", trials=10000)
    rows = [Row(f"id-{n}", n, "new", {"ndcg_at_10": float(np.mean(list(values[n].values())))}, {}, values[n])
            for n in names]
    rec, why = recommendation_of(rows, "ndcg_at_10")
    board = Leaderboard("real", names, np.array([[values[n][q] for q in QUESTIONS] for n in names]))
    assert why == "" and [c.name for c in best.candidates] == [r.name.removeprefix("id-") for r in rec.rows] \
        == board.order()
    assert [row.p_best for row in best.recommendation.rows] == [row.p_best for row in rec.rows]
    significant = [c.name for c, row in zip(best.candidates, best.recommendation.rows)
                   if row is best.recommendation.top or not row.significantly_worse(0.05)]
    assert board.top_group(alpha=0.05, trials=10000) == significant
