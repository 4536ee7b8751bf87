"""Metrics agree with trec_eval (pytrec_eval) to 1e-6, and with hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from retrieval_lab.evaluate import METRICS, evaluate
from retrieval_lab.types import Qrels, Run

KS = [1, 3, 5, 10, 20]
# our family -> trec_eval measure
TREC_NAMES = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut", "hit_rate": "success"}


def trec_eval(run: Run, qrels: Qrels, ks: list[int]) -> dict[str, dict[str, float]]:
    cut = ",".join(map(str, ks))
    measures = {f"{name}.{cut}" for name in TREC_NAMES.values()} | {"recip_rank"}
    evaluator = pytrec_eval.RelevanceEvaluator({q: dict(d) for q, d in qrels.items()}, measures)
    return evaluator.evaluate({q: {d: s for d, s in hits} for q, hits in run.items()})


def assert_agrees(run: Run, qrels: Qrels, ks: list[int]) -> int:
    """Compare every metric at every cutoff on every query pytrec_eval evaluates; return how many compared."""
    ours = evaluate(run, qrels, list(METRICS), ks)
    row = {q: i for i, q in enumerate(ours.query_ids)}
    theirs = trec_eval(run, qrels, ks)
    compared = 0
    for qid, measures in theirs.items():
        for family, trec_name in TREC_NAMES.items():
            for k in ks:
                assert ours.per_query[f"{family}_at_{k}"][row[qid]] == pytest.approx(
                    measures[f"{trec_name}_{k}"], abs=1e-6), (qid, family, k)
                compared += 1
        # trec_eval's reciprocal rank has no cutoff: compare at a cutoff past the run's end.
        deepest = max(ks)
        if len(run[qid]) <= deepest:
            assert ours.per_query[f"mrr_at_{deepest}"][row[qid]] == pytest.approx(measures["recip_rank"], abs=1e-6)
        # and MRR@k equals trec_eval's reciprocal rank of the run truncated to k
        for k in ks:
            truncated = trec_eval(Run({qid: run[qid][:k]}), Qrels({qid: qrels[qid]}), [k]).get(qid)
            expected = truncated["recip_rank"] if truncated else 0.0
            assert ours.per_query[f"mrr_at_{k}"][row[qid]] == pytest.approx(expected, abs=1e-6)
    return compared


def random_case(rng: np.random.Generator, n_queries: int) -> tuple[Run, Qrels]:
    run, qrels = Run(), Qrels()
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.choice(60, size=int(rng.integers(1, 20)), replace=False)
        grades = rng.integers(0, 4, size=len(judged))  # graded, with judged non-relevant rows (0)
        qrels[qid] = {f"d{j}": int(g) for j, g in zip(judged, grades)}
        n = int(rng.integers(0, 40))
        ids = rng.choice(80, size=n, replace=False)  # some retrieved docs are unjudged
        scores = np.sort(rng.random(n))[::-1]  # distinct scores: trec_eval re-sorts by score
        run[qid] = [(f"d{i}", float(s)) for i, s in zip(ids, scores)]
    return run, qrels


def test_agrees_with_pytrec_eval_on_1000_random_runs():
    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(1000):
        run, qrels = random_case(rng, n_queries=3)
        compared += assert_agrees(run, qrels, KS)
    assert compared > 10_000


def test_hand_computed_values():
    qrels = Qrels({"q": {"a": 2, "b": 1, "c": 0, "z": 1}})  # z is never retrieved
    run = Run({"q": [("x", 4.0), ("a", 3.0), ("c", 2.0), ("b", 1.0)]})
    m = evaluate(run, qrels, list(METRICS), [1, 2, 4]).means
    assert m["precision_at_1"] == 0 and m["precision_at_2"] == 0.5 and m["precision_at_4"] == 0.5
    assert m["recall_at_4"] == pytest.approx(2 / 3)
    assert m["mrr_at_1"] == 0 and m["mrr_at_4"] == 0.5
    assert m["hit_rate_at_1"] == 0 and m["hit_rate_at_2"] == 1
    assert m["map_at_4"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg_at_4"] == pytest.approx(dcg / idcg)


def test_a_document_listed_twice_counts_once():
    qrels = Qrels({"q": {"a": 1, "b": 1}})
    doubled = evaluate(Run({"q": [("a", 3.0), ("a", 2.0), ("b", 1.0)]}), qrels, ["recall", "precision"], [2]).means
    assert doubled["recall_at_2"] == 1.0 and doubled["precision_at_2"] == 1.0


def test_query_without_results_scores_zero_and_is_averaged():
    qrels = Qrels({"q1": {"a": 1}, "q2": {"b": 1}})
    ev = evaluate(Run({"q1": [("a", 1.0)]}), qrels, ["ndcg"], [10])
    assert ev.query_ids == ["q1", "q2"] and ev.means["ndcg_at_10"] == 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(Run(), Qrels({"q": {"a": 1}}), ["f1"], [10])
    with pytest.raises(ValueError, match="positive"):
        evaluate(Run(), Qrels({"q": {"a": 1}}), ["ndcg"], [0])


def test_runs_built_from_search_arrays_put_ties_in_trec_evals_order():
    """Scores rounded to 1 decimal: most rows hold ties, given in a shuffled order, as a search backend may give
    them. Run.from_arrays orders them as trec_eval does, so every metric agrees with it without re-sorting, and the
    same scores in any input order give the same run."""
    rng = np.random.default_rng(11)
    unit_ids = [f"d{i}" for i in range(80)]
    compared = 0
    for _ in range(200):
        _, qrels = random_case(rng, n_queries=3)
        indices = np.stack([rng.choice(80, size=25, replace=False) for _ in qrels])
        scores = -np.sort(-np.round(rng.random(indices.shape), 1), axis=1)
        run = Run.from_arrays(list(qrels), unit_ids, indices, scores)
        shuffled = np.stack([rng.permutation(25) for _ in qrels])
        # the same hits listed in another order within each group of equal scores
        order = np.lexsort((shuffled, -scores), axis=1)
        again = Run.from_arrays(list(qrels), unit_ids, np.take_along_axis(indices, order, axis=1),
                                np.take_along_axis(scores, order, axis=1))
        assert again == run
        compared += assert_agrees(run, qrels, KS)
    assert compared > 1_000
    assert any(len({s for _, s in hits}) < len(hits) for hits in run.values())
