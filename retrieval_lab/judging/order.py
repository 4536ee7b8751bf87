"""Which unit to judge next (`judge --order`), for one assessor.

- `question` (default): one question at a time, as TREC assessors judge a topic; within it the units most
  configurations retrieved first. The assessor stays on the question of their last judgement until every unit of it
  is done, then takes the next question in file order that no other assessor is working on (the question of another
  assessor's last judgement, while it has units left), else the next one left.
- `global`: the pool order across questions (most retrieved first), from after the last unit judged.
- `decisive`: the unit whose judgement is expected to raise most the worst cases of (leader - configuration) for
  the configurations that could still overtake it (decide.unit_values, MTC's choice). To keep the question's context, it stays on the question of the
  last judgement while that question holds a unit worth at least half the best one; otherwise it moves to the best.

"Done" for an assessor: judged by them, or judged by anyone and not in the overlap share (store.py).
"""
from __future__ import annotations

import numpy as np

from retrieval_lab.errors import LabError
from retrieval_lab.judging.decide import Board, Decision, unit_values

ORDERS = ("question", "global", "decisive")
DEFAULT_ORDER = "question"
STAY_SHARE = 0.5  # decisive: stay on the question while it holds a unit worth this share of the best one


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise LabError(f"--order {order!r} is not a judging order: choose one of {', '.join(ORDERS)} "
                       f"(default {DEFAULT_ORDER}: one question at a time)")
    return order


def next_unit(order: str, board: Board, grades: np.ndarray, done: np.ndarray, last: int | None,
              taken_questions: frozenset[int] = frozenset(), decision: Decision | None = None) -> int | None:
    """The index of the next unit for this assessor, None when every unit is done. `done`: bool per unit; `last`:
    the unit of the assessor's last judgement (None: none yet); `taken_questions`: questions other assessors are
    working on."""
    left = np.flatnonzero(~done)
    if not len(left):
        return None
    if order == "global":
        start = -1 if last is None else last
        after = left[left > start]
        return int(after[0] if len(after) else left[0])
    if order == "decisive":
        values = unit_values(board, grades, decision)
        values = np.where(done, -1.0, values)
        best = float(values.max())
        if best > 0:
            if last is not None:
                here = np.flatnonzero((board.question == board.question[last]) & ~done)
                if len(here) and values[here].max() >= STAY_SHARE * best:
                    return int(here[np.argmax(values[here])])
            return int(np.argmax(values))
        # nothing left can change a comparison: the rest in question order
    return _question_order(board, done, last, taken_questions)


def _question_order(board: Board, done: np.ndarray, last: int | None, taken: frozenset[int]) -> int:
    if last is not None:
        here = np.flatnonzero((board.question == board.question[last]) & ~done)
        if len(here):
            return int(here[0])
    start = 0 if last is None else int(board.question[last])
    candidates = [(q - start) % board.questions for q in np.unique(board.question[~done])]
    ordered = [(start + k) % board.questions for k in sorted(candidates)]
    free = [q for q in ordered if q not in taken] or ordered
    return int(np.flatnonzero((board.question == free[0]) & ~done)[0])


def left_in_question(order: str, board: Board, done: np.ndarray, unit: int, values: np.ndarray | None = None) -> int:
    """Units of `unit`'s question still to judge: all not done; for `decisive`, those that could still change a
    comparison (value above 0)."""
    mask = (board.question == board.question[unit]) & ~done
    if order == "decisive" and values is not None:
        mask &= values > 0
    return int(mask.sum())
