"""Cross-validated selection over query folds (retrieval_lab/evaluate/crossval.py) on hand-made per-query values."""
import pytest

from retrieval_lab.errors import LabError
from retrieval_lab.evaluate.crossval import cross_validate, query_folds

QUERIES = [f"q{i}" for i in range(10)]
FIRST, SECOND = QUERIES[:5], QUERIES[5:]


def test_folds_partition_the_queries_evenly_whatever_their_order():
    ids = [f"q{i}" for i in range(23)]
    folds = query_folds(ids, k=5, seed=0)
    assert sorted(q for fold in folds for q in fold) == sorted(ids)  # each query in exactly one fold
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert query_folds(list(reversed(ids)) + ids[:3], k=5, seed=0) == folds  # order and duplicates do not matter
    assert query_folds(ids, k=5, seed=1) != folds


def test_too_many_folds_is_an_error():
    with pytest.raises(LabError, match="2 <= folds <= queries"):
        query_folds(["a", "b"], k=3)
    with pytest.raises(LabError):
        query_folds(["a", "b"], k=1)


def test_each_fold_picks_on_the_others_and_scores_the_pick_on_itself():
    # "spiky" is perfect on the first half and useless on the second; "steady" scores 0.6 everywhere.
    per_query = {"steady": {q: 0.6 for q in QUERIES},
                 "spiky": {**{q: 1.0 for q in FIRST}, **{q: 0.0 for q in SECOND}}}
    cv = cross_validate(per_query, [FIRST, SECOND])
    # fold 0 held out: on SECOND steady 0.6 beats spiky 0.0, and steady scores 0.6 on FIRST
    assert (cv.folds[0].picked, cv.folds[0].train_mean, cv.folds[0].held_out_mean) == ("steady", 0.6, 0.6)
    # fold 1 held out: on FIRST spiky 1.0 beats steady, and spiky scores 0.0 on SECOND
    assert (cv.folds[1].picked, cv.folds[1].train_mean, cv.folds[1].held_out_mean) == ("spiky", 1.0, 0.0)
    assert cv.held_out_mean == pytest.approx(0.3)  # far below the best test score (0.6): the cost of choosing
    assert cv.held_out_sd == pytest.approx(0.6 / 2 ** 0.5)
    assert cv.full_means == pytest.approx({"steady": 0.6, "spiky": 0.5})
    # picked once each: the tie goes to the higher mean over all queries
    assert cv.chosen == "steady" and cv.picks == {"steady": 1, "spiky": 1}


def test_a_tie_on_the_training_folds_goes_to_the_candidate_listed_first():
    same = {q: 0.5 for q in QUERIES}
    cv = cross_validate({"cheap": dict(same), "costly": dict(same)}, [FIRST, SECOND])
    assert [f.picked for f in cv.folds] == ["cheap", "cheap"] and cv.chosen == "cheap"
    cv = cross_validate({"costly": dict(same), "cheap": dict(same)}, [FIRST, SECOND])
    assert cv.chosen == "costly"


def test_the_most_often_picked_candidate_is_chosen():
    folds = [QUERIES[i::3] for i in range(3)]
    # "b" is far ahead on fold 2 and behind elsewhere: it wins the training folds whenever fold 2 is among them
    a = {q: 0.7 for q in QUERIES}
    b = {q: (1.0 if q in folds[2] else 0.5) for q in QUERIES}
    cv = cross_validate({"a": a, "b": b}, folds)
    assert [f.picked for f in cv.folds] == ["b", "b", "a"]
    assert cv.full_means["a"] > cv.full_means["b"]  # 0.70 against 0.65 over all queries ...
    assert cv.chosen == "b"  # ... but the choice is the procedure's: picked most often


def test_a_candidate_missing_a_query_is_an_error():
    per_query = {"a": {q: 0.5 for q in QUERIES}, "b": {q: 0.5 for q in QUERIES[:-1]}}
    with pytest.raises(LabError, match="candidate 'b' has no value for 1 of the 10 queries"):
        cross_validate(per_query, [FIRST, SECOND])
