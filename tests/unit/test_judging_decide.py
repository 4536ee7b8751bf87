"""Judging orders, the stopping rule and several assessors, on hand-made pools: the rule's known answers, which unit
each order picks next, the qrels rule and Cohen's kappa, a pool made again under a running page (two processes
appending to one folder at once: tests/integration/test_judging_decide_processes.py), and the errors for an unknown
order, a bad assessor name and a bad overlap."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from retrieval_lab.errors import LabError
from retrieval_lab.judging.assessors import (agreement, check_assessor, check_overlap, clean_name,
                                             in_overlap)
from retrieval_lab.judging.decide import FORECAST_NOTE, Board, decide, grade_estimates, unit_values
from retrieval_lab.judging.order import check_order, next_unit
from retrieval_lab.judging.pool import Pool, PoolItem, pool_items, write_atomically
from retrieval_lab.judging.server import JudgingApp
from retrieval_lab.judging.store import JudgementStore, consensus_grade
from retrieval_lab.types import Corpus, Queries, Run

NAN = float("nan")


def two_configurations() -> Board:
    """One question; A ranks u0 first and u2 second, B ranks u1 first and u2 second: u2 cannot tell them apart."""
    return Board.from_hits([[(0, 1)], [(1, 1)], [(0, 2), (1, 2)]], [0, 0, 0], 1, ["A", "B"], depth=10)


def test_all_judged_the_difference_is_exact_and_only_units_ranked_differently_count():
    board = two_configurations()
    decision = decide(board, np.array([2.0, 0.0, 2.0]))
    assert decision.decided and board.names[decision.leader] == "A"
    (b,) = decision.challengers
    # DCG@10: A = 2/log2(2) + 2/log2(3), B = 0 + 2/log2(3); the shared u2 cancels
    assert b.exact and b.difference == pytest.approx(2.0) and b.lower == pytest.approx(2.0)
    assert "decided: A leads B by 2.0000 DCG@10 (exact" in decision.statement(board.names, "DCG@10")
    # u2 is judged or not: the comparison is the same, and judging it is worth nothing
    values = unit_values(board, np.array([NAN, NAN, NAN]))
    assert values[2] == 0 and values[0] > 0 and values[1] > 0


def test_unjudged_units_leave_the_comparison_open_until_the_bound_clears_zero():
    board = two_configurations()
    decision = decide(board, np.array([2.0, NAN, NAN]))
    # B's u1 could still be relevant: B could still overtake A
    assert not decision.decided and [c.name for c in decision.contenders] == ["B"]
    assert "leader: A" in decision.statement(board.names, "DCG@10") and "could still overtake it: B" in \
        decision.statement(board.names, "DCG@10")
    # a tie on the judged units: the same score, no decision even with everything judged
    tie = decide(board, np.array([2.0, 2.0, 0.0]))
    assert not tie.decided and tie.challengers[0].exact and tie.challengers[0].difference == 0


def test_the_forecast_names_a_likely_leader_but_only_the_bounds_decide():
    # 40 questions: A retrieves a relevant unit first on every one; B two units it alone retrieved, first and second
    hits, question = [], []
    for q in range(40):
        hits += [[(0, 1)], [(1, 1)], [(1, 2)]]
        question += [q, q, q]
    board = Board.from_hits(hits, question, 40, ["A", "B"], 10)
    grades = np.full(120, NAN)
    grades[0::3] = 2.0
    grades[1:30:3] = grades[2:30:3] = 0.0  # B's on 10 questions judged not relevant: the rest are estimated low
    decision = decide(board, grades)
    y = decision.runner_up
    # the estimates make A the likely leader, but B's 60 unjudged units, all relevant, would beat it: not decided
    both = 2 + 2 / np.log2(3)
    assert decision.likely and 0 < y.likely_lower < y.difference
    assert not decision.decided and y.lower == pytest.approx(2 - 30 * both / 40) and y.upper == pytest.approx(2.0)
    assert decision.statement(board.names, "DCG@10") == \
        "leader: A (2.0000 DCG@10); could still overtake it: B; forecast: A is the likely leader (not certain: " \
        f"{FORECAST_NOTE})"
    grades[1:60:3] = grades[2:60:3] = 0.0  # 10 more: B cannot reach A now, whatever its other 40 units are
    decision = decide(board, grades)
    assert decision.decided and decision.runner_up.lower == pytest.approx(2 - 20 * both / 40)
    assert decision.statement(board.names, "DCG@10") == \
        "decided: A leads every other configuration on the judged pool, whatever the unjudged units turn out to " \
        f"be (by at least {2 - 20 * both / 40:.4g} DCG@10, over B)"


def test_the_bound_is_exact_one_unjudged_unit_decides_or_not():
    # one question: A ranks u0 first; B ranks u1 first and u2 second
    board = Board.from_hits([[(0, 1)], [(1, 1)], [(1, 2)]], [0, 0, 0], 1, ["A", "B"], 10)
    second = 1 / np.log2(3)
    # A = 2; B = 0 + g2 / log2(3) is at most 2 * 0.631 = 1.262 < 2 whatever u2 is: decided
    decision = decide(board, np.array([2.0, 0.0, NAN]))
    assert decision.decided and board.names[decision.leader] == "A"
    assert decision.runner_up.lower == pytest.approx(2 - 2 * second)
    assert decision.runner_up.upper == pytest.approx(2.0)
    # u0 only partly relevant: A = 1, and u2 relevant would give B 1.262 > 1: not decided, B could overtake A
    decision = decide(board, np.array([1.0, 0.0, NAN]))
    assert not decision.decided and [c.name for c in decision.contenders] == ["B"]
    assert decision.runner_up.lower == pytest.approx(1 - 2 * second) and decision.runner_up.lower < 0
    # and the bound is reached: that grade of u2 does make B the leader, grade 0 keeps A
    assert board.names[decide(board, np.array([1.0, 0.0, 2.0])).leader] == "B"
    assert board.names[decide(board, np.array([1.0, 0.0, 0.0])).leader] == "A"
    # u2 partly relevant: B = 0.631 < 1 exactly
    exact = decide(board, np.array([1.0, 0.0, 1.0]))
    assert exact.decided and exact.runner_up.exact and exact.runner_up.lower == pytest.approx(1 - second)


def test_a_decision_holds_for_every_grade_of_the_unjudged_units_and_its_bound_is_reached():
    rng = np.random.default_rng(3)
    decided = 0
    for _ in range(60):
        # 2 questions, 3 configurations each ranking 3 of a question's 4 units; 3 of the 8 units left unjudged
        hits, question = [[] for _ in range(8)], [0] * 4 + [1] * 4
        for q in range(2):
            for c in range(3):
                for rank, u in enumerate(rng.permutation(4)[:3], 1):
                    hits[4 * q + u].append((c, rank))
        board = Board.from_hits(hits, question, 2, ["A", "B", "C"], 10)
        grades = rng.integers(0, 3, 8).astype(float)
        unjudged = rng.permutation(8)[:3]
        grades[unjudged] = NAN
        decision = decide(board, grades)
        worst = {c.index: np.inf for c in decision.challengers}
        for completion in itertools.product([0.0, 1.0, 2.0], repeat=3):
            full = grades.copy()
            full[unjudged] = completion
            scores = full @ board.weights / board.questions
            for c in worst:
                worst[c] = min(worst[c], scores[decision.leader] - scores[c])
        for c in decision.challengers:
            assert c.lower == pytest.approx(worst[c.index])  # the bound is the worst case, reached
        if decision.decided:
            decided += 1
            assert all(w > 0 for w in worst.values())
    assert 0 < decided < 60


def test_unjudged_units_count_at_the_grade_of_judged_units_with_as_many_votes():
    # units 0-3 retrieved by both configurations, 4-7 by one; judged: the 2-vote ones relevant, 1-vote not
    board = Board.from_hits([[(0, 1), (1, 2)]] * 4 + [[(0, 3)]] * 4, [0] * 8, 1, ["A", "B"], 10)
    grades = np.array([2, 2, 2, NAN, 0, 0, 0, NAN])
    est = grade_estimates(board, grades)
    assert est.mean[3] > 1.2 and est.mean[7] < 0.5 and est.variance[3] > 0 and est.variance[7] > 0
    assert est.mean[0] == 2 and est.variance[0] == 0 and est.kind[0] == -1
    # the estimate each kind of unit shares is uncertain too: less so as more units of the kind are judged
    assert est.kind[3] != est.kind[7] and all(v > 0 for v in est.kind_variance)
    # nothing judged: a uniform prior over the grades
    est = grade_estimates(board, np.full(8, NAN))
    assert est.mean[0] == pytest.approx(1.0) and est.variance[0] == pytest.approx(2 / 3)


def question_board() -> Board:
    # question 0: units 0, 1 (pool order), question 1: units 2, 3; question 2: unit 4
    return Board.from_hits([[(0, 1)], [(1, 1)], [(0, 2)], [(1, 2)], [(0, 3)]], [0, 0, 1, 1, 2], 3, ["A", "B"], 10)


def test_question_order_finishes_a_question_then_takes_the_next_free_one():
    board, grades = question_board(), np.full(5, NAN)
    done = np.zeros(5, dtype=bool)
    assert next_unit("question", board, grades, done, None) == 0
    done[3] = True  # another assessor judged unit 3 (question 1)
    assert next_unit("question", board, grades, done, 3) == 2  # stays on question 1 while it has a unit left
    done[[0, 2]] = True
    assert next_unit("question", board, grades, done, 2) == 4  # question 1 settled: on to question 2
    # another assessor is on question 2: question 0 comes first
    assert next_unit("question", board, grades, done, 2, frozenset({2})) == 1
    assert next_unit("question", board, grades, np.ones(5, dtype=bool), 2) is None


def test_global_order_continues_after_the_last_unit_judged():
    board, grades = question_board(), np.full(5, NAN)
    done = np.array([True, False, True, False, False])
    assert next_unit("global", board, grades, done, 2) == 3
    assert next_unit("global", board, grades, np.array([False, True, True, True, True]), 4) == 0  # wraps


def test_decisive_order_asks_for_the_unit_that_tells_leader_and_contender_apart():
    # question 0: u0, u1 shared at the same ranks (worthless), u2 A's first, u6 B's first; question 1: u7 A's
    # first, u3 B's first, u5 shared, u4 B's third (less weight)
    hits = [[(0, 2), (1, 2)], [(0, 3), (1, 3)], [(0, 1)], [(1, 1)], [(1, 3)], [(0, 2), (1, 2)], [(1, 1)], [(0, 1)]]
    board = Board.from_hits(hits, [0, 0, 0, 1, 1, 1, 0, 1], 2, ["A", "B"], 10)
    grades, done = np.full(8, NAN), np.zeros(8, dtype=bool)
    values = unit_values(board, grades)
    assert values[0] == values[1] == values[5] == 0
    assert values[2] == values[3] == values[6] == values[7] > values[4] > 0
    assert next_unit("decisive", board, grades, done, None) == 2  # the best (the first of the ties)
    grades[2], done[2] = 0.0, True
    # A's first unit is not relevant: B leads. Judging B's own units (u3, u6) raises B's worst case over A by their
    # expected grade, now low (u2, of their kind, was 0); A's u7 raises it by the highest grade minus that: u7 is
    # worth most, and question 0's u6 not half of it: on to question 1
    values = unit_values(board, grades)
    assert values[7] > 2 * values[6] and values[6] == values[3] > 0
    assert next_unit("decisive", board, grades, done, 2) == 7
    grades[7], done[7] = 0.0, True
    # u3, u4 and u6 are worth the same now: it stays on question 1 (u3) instead of going back to u6
    values = unit_values(board, grades)
    assert values[3] == pytest.approx(values[6]) and values[3] > 0
    assert next_unit("decisive", board, grades, done, 7) == 3


def test_bad_order_assessor_and_overlap_are_refused_with_a_fix_that_works():
    with pytest.raises(LabError, match="--order 'fastest' is not a judging order: choose one of question, global, "
                                       "decisive"):
        check_order("fastest")
    for bad in ("ann smith", "bob\tx", "eve\n", "", "-dash", "x" * 65, 'q"uote'):
        with pytest.raises(LabError, match="fix: --assessor ") as err:
            check_assessor(bad)
        fix = str(err.value).rsplit("--assessor ", 1)[1]
        assert check_assessor(fix) == fix  # following the fix works
    assert "' ' at position 4" in str(pytest.raises(LabError, check_assessor, "ann smith").value)
    assert check_assessor("ann.smith@lab") == "ann.smith@lab" and clean_name("ann smith") == "ann_smith"
    with pytest.raises(LabError, match="--overlap 1.5 is not a share"):
        check_overlap(1.5)


def test_overlap_share_is_the_same_in_every_process_and_about_the_share_asked():
    keys = [("q", f"d{i}", 0, 10) for i in range(4000)]
    share = sum(in_overlap(k, 0.1) for k in keys) / len(keys)
    assert 0.08 < share < 0.12 and not any(in_overlap(k, 0.0) for k in keys)
    assert [in_overlap(k, 0.1) for k in keys[:50]] == [in_overlap(k, 0.1) for k in keys[:50]]


def test_consensus_is_the_lower_median_and_kappa_matches_sklearn():
    assert [consensus_grade(g) for g in ([2], [0, 2], [1, 2], [0, 1, 2], [0, 2, 2])] == [2, 0, 1, 1, 2]
    a = [2, 2, 0, 1, 0, 2, 0, 0]
    b = [2, 1, 0, 1, 0, 2, 2, 0]
    units = {("q", f"d{i}", 0, 1): {"ann": x, "bob": y} for i, (x, y) in enumerate(zip(a, b))}
    units[("q", "solo", 0, 1)] = {"ann": 2}
    (row,) = agreement(units)
    assert row["assessors"] == ["ann", "bob"] and row["units"] == 8 and row["agree"] == 6 / 8
    assert row["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-4)
    assert row["kappa_relevant"] == pytest.approx(cohen_kappa_score([x > 0 for x in a], [y > 0 for y in b]),
                                                  abs=1e-4)
    (same,) = agreement({("q", "d", 0, 1): {"ann": 2, "bob": 2}})
    assert same["kappa"] is None  # one label throughout: chance agreement is 1, kappa undefined


CORPUS = Corpus([f"d{i}" for i in range(6)], [f"t{i}" for i in range(6)], ["word " * 20] * 6)


def pool_of(configurations: int = 2) -> Pool:
    questions = Queries(["q1", "q2", "q3"], ["first question", "second question", "third question"])
    items = [PoolItem(q, f"d{d}", 0, 50, [(c, d + 1) for c in range(configurations) if (d + c) % 3])
             for q in ("q1", "q2", "q3") for d in range(6)]
    items = [i for i in items if i.hits]
    return Pool("exp", None, 10, "q.jsonl", "sha", questions,
                [{"run_id": f"r{c}", "name": f"c{c}", "study": ""} for c in range(configurations)],
                {"name": "x"}, CORPUS.fingerprint, items)


def test_each_assessor_sees_the_other_and_judges_the_overlap_blind(tmp_path):
    pool = pool_of()
    ann = JudgingApp(tmp_path, pool, JudgementStore(tmp_path), CORPUS, assessor="ann", overlap=0.5)
    bob = JudgingApp(tmp_path, pool_of(), JudgementStore(tmp_path), CORPUS, assessor="bob", overlap=0.5)
    overlap = [i for i, item in enumerate(pool.items) if in_overlap(item.key, 0.5)]
    alone = [i for i, item in enumerate(pool.items) if not in_overlap(item.key, 0.5)]
    assert overlap and alone
    for i in (overlap[0], alone[0]):
        item = pool.items[i]
        ann.judge({"query_id": item.query_id, "doc": item.doc, "start": 0, "end": 50, "grade": 2})
    state = bob.state()  # bob's server reads ann's lines
    assert state["judged"] == 2 and state["mine"] == 0 and state["assessors"] == ["ann"]
    assert state["left_for_me"] == len(pool.items) - 1  # ann's non-overlap unit is done for bob too
    assert bob.item(overlap[0])["judgement"] is None  # blind
    assert bob.item(alone[0])["judgement"]["assessor"] == "ann"
    item = pool.items[overlap[0]]
    state = bob.judge({"query_id": item.query_id, "doc": item.doc, "start": 0, "end": 50, "grade": 0})
    assert state["agreement"][0]["units"] == 1 and state["assessors"] == ["ann", "bob"]
    qrels = (tmp_path / "qrels.tsv").read_text()
    assert f"{item.query_id}\t{item.doc}\t0" in qrels  # 2 and 0: the lower median


def test_a_pool_made_again_under_a_running_page_is_followed_and_said(tmp_path):
    app = JudgingApp(tmp_path, pool_of(2), JudgementStore(tmp_path), CORPUS)
    item = app.pool.items[0]
    app.judge({"query_id": item.query_id, "doc": item.doc, "start": 0, "end": 50, "grade": 2})
    bigger = pool_of(3)
    write_atomically(tmp_path / "pool.json", json.dumps(bigger.to_json()))
    state = app.state()
    assert state["configurations"] == 3 and state["total"] == len(bigger.items) and state["judged"] == 1
    assert "made again by another judge process" in state["notices"][0] and "c2" in state["notices"][0]


def test_extending_pool_items_keeps_hits_and_numbers_the_new_configuration_after_the_old():
    old = pool_items([Run({"q": [("a@0-5", 1.0), ("b@0-5", 0.5)]})], ["q"], 10)
    new = pool_items([Run({"q": [("b@0-5", 1.0), ("c@0-5", 0.5)]})], ["q"], 10, old, first=1)
    assert [(i.doc, i.hits) for i in new] == [("b", [(0, 2), (1, 1)]), ("a", [(0, 1)]), ("c", [(1, 2)])]


def test_the_console_hears_of_the_decision_when_it_changes_not_at_every_judgement(tmp_path):
    lines: list[str] = []
    app = JudgingApp(tmp_path, pool_of(2), JudgementStore(tmp_path), CORPUS, order="decisive", report=lines.append)
    app.tell(app.state())
    judged = 0
    while app.state()["left_for_me"]:
        item = app.pool.items[app.state()["resume"]]
        # c0 retrieves d1, d2, d4, d5 and c1 d0, d1, d3, d4 (pool_of): c0's own are the relevant ones
        grade = 2 if item.doc in ("d2", "d5") else 0
        app.judge({"query_id": item.query_id, "doc": item.doc, "start": 0, "end": 50, "grade": grade})
        judged += 1
    assert lines and len(lines) < judged
    # decided before every passage was judged, said once (the runner-up did not change after)
    decided = [line for line in lines if "decided: c0 leads every other configuration" in line]
    assert len(decided) == 1 and lines[-1] == decided[0] and int(decided[0][1:].split("/")[0]) < judged


def test_a_document_counts_once_per_configuration_at_its_first_unit_as_the_lab_scores_documents():
    # A returns two chunks of document x, then y; B returns y: A's second chunk of x adds nothing, and y is A's
    # second document (rank 2 after the repeat is dropped), not its third unit
    board = Board.from_hits([[(0, 1)], [(0, 2)], [(0, 3), (1, 1)]], [0, 0, 0], 1, ["A", "B"], 10,
                            documents=["x", "x", "y"])
    assert board.weights[0, 0] == 1.0 and board.weights[1, 0] == 0.0
    assert board.weights[2, 0] == pytest.approx(1 / np.log2(3)) and board.weights[2, 1] == 1.0
    assert list(board.kind[:, 0]) == [1, 1, 2]  # x retrieved by one configuration, y by both
