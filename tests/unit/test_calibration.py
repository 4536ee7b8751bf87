"""Calibration of synthetic questions: Kendall tau, top groups and the BM25 rank shift on hand-made leaderboards;
the study's configurations and the generator options of `retrieval-lab calibrate`."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.commands.calibrate import calibrate, parse_generators, study_configurations
from retrieval_lab.data.synth import SynthError
from retrieval_lab.errors import LabError
from retrieval_lab.evaluate.calibration import Leaderboard, agreement, kendall_tau

QUERIES = 40


def board(label: str, means: dict[str, float]) -> Leaderboard:
    """Every query scores its configuration's mean: differences are the same on every query."""
    return Leaderboard(label, list(means), np.array([[m] * QUERIES for m in means.values()]))


def test_kendall_tau_b_by_hand():
    real = {"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.2}
    swapped = {"a": 0.5, "b": 0.3, "c": 0.4, "d": 0.2}  # one of six pairs discordant: (5 - 1) / 6
    assert kendall_tau(real, swapped)[0] == pytest.approx(4 / 6)
    assert kendall_tau(real, real)[0] == pytest.approx(1.0)
    assert kendall_tau(real, {k: -v for k, v in real.items()})[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="different configurations"):
        kendall_tau(real, {"a": 1.0})


def test_top_group_keeps_what_is_not_significantly_worse():
    top = np.linspace(0.2, 0.9, QUERIES)
    tied = top.copy()
    tied[0] -= 0.1  # worse on one query only: every sign flip gives the same |mean|, p = 1
    worse = top - 0.3  # worse on every query: p = 1 / (trials + 1), significant after Holm
    b = Leaderboard("s", ["worse", "tied", "top"], np.vstack([worse, tied, top]))
    assert b.order() == ["top", "tied", "worse"] and b.rank("worse") == 3
    assert b.top_group(alpha=0.05, trials=2000) == ["top", "tied"]


def test_agreement_winners_groups_and_bm25_shift():
    real = board("real", {"bm25": 0.30, "dense": 0.35, "hybrid": 0.40, "weak": 0.10})
    lexical = board("extract", {"bm25": 0.90, "dense": 0.50, "hybrid": 0.80, "weak": 0.20})
    a = agreement(real, lexical, "bm25", trials=2000)
    assert (a.real_winner, a.synthetic_winner) == ("hybrid", "bm25")
    assert (a.reference_rank_real, a.reference_rank_synthetic, a.reference_shift) == (3, 1, 2)
    # constant per-query differences: every other configuration is significantly worse than each top
    assert a.synthetic_group == ["bm25"] and a.real_group == ["hybrid"]
    assert not a.real_winner_in_synthetic_group and not a.synthetic_winner_in_real_group
    # pairs: (bm25,dense) d, (bm25,hybrid) d, (bm25,weak) c, (dense,hybrid) c, (dense,weak) c, (hybrid,weak) c
    assert a.tau == pytest.approx((4 - 2) / 6)
    same = agreement(real, board("title", {"bm25": 0.6, "dense": 0.7, "hybrid": 0.8, "weak": 0.1}), "bm25",
                     trials=2000)
    assert same.tau == pytest.approx(1.0) and same.real_winner_in_synthetic_group and same.reference_shift == 0
    assert same.as_dict()["reference_shift"] == 0
    with pytest.raises(ValueError, match="reference configuration 'bm25_x'"):
        agreement(real, lexical, "bm25_x")


def test_generators_variants_and_their_options():
    assert parse_generators("title,extract", []) == {"title": ("title", {}), "extract": ("extract", {})}
    parsed = parse_generators("extract,keep=extract", ["keep.keep_source_words=true", "extract.dropout=0.5"])
    assert parsed == {"extract": ("extract", {"dropout": 0.5}), "keep": ("extract", {"keep_source_words": True})}
    with pytest.raises(LabError, match="generator extract has no setting 'dropuot'"):
        parse_generators("extract", ["extract.dropuot=0.5"])
    with pytest.raises(LabError, match="expected GENERATOR.KEY=VALUE with GENERATOR one of extract"):
        parse_generators("extract", ["title.window=3"])
    with pytest.raises(SynthError, match="unknown generator"):
        parse_generators("titel", [])


def test_study_configurations_follow_the_sweep_grid():
    configurations = study_configurations("calibration", ["dataset=cranfield"])
    names = [c.name for c in configurations]
    assert len(names) == 12 and names[0] == "bm25" and "rrf_minilm_l6" in names
    assert "+experiments/calibration=bm25" in configurations[0].overrides
    chosen = study_configurations("calibration", ["+experiments/calibration=bm25,dense_wordllama"])
    assert [c.name for c in chosen] == ["bm25", "dense_wordllama"]  # an override sweep replaces the study's
    grid = study_configurations("bm25", ["retriever.k1=0.9,1.2", "retriever.b=0.4"])
    assert [c.name for c in grid] == ["k1=0.9", "k1=1.2"]  # b given once: not swept, not in the name
    assert all("retriever.b=0.4" in c.overrides for c in grid)
    with pytest.raises(LabError, match="no study 'nosuch'"):
        study_configurations("nosuch")


def test_study_configurations_are_the_basic_sweepers_jobs_in_its_order():
    """A key swept on the command line keeps the study's place for it (Hydra's basic sweeper: the study's params,
    then the command line, one list per key), so calibrate and `sweep` run the same jobs in the same order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    grid = study_configurations("bm25", ["retriever.k1=0.9,1.2", "dataset=nfcorpus"])
    assert [c.name for c in grid] == ["k1=0.9 b=0.4", "k1=0.9 b=0.6", "k1=0.9 b=0.75",
                                      "k1=1.2 b=0.4", "k1=1.2 b=0.6", "k1=1.2 b=0.75"]
    params = ["retriever.k1=0.6,0.9,1.2,1.5", "retriever.b=0.4,0.6,0.75"]  # experiments/bm25.yaml
    parsed = OverridesParser.create().parse_overrides([*params, "+experiments=bm25", "retriever.k1=0.9,1.2",
                                                       "dataset=nfcorpus"])
    assert [c.overrides for c in grid] == BasicSweeper.split_arguments(parsed, None)[0]
    with pytest.raises(LabError, match="does not support sweep type.*\n  fix: list the values"):
        study_configurations("bm25", ["retriever.k1=interval(0.5,1.5)"])
    assert [c.name for c in study_configurations("bm25", ["retriever.k1=range(1,3)", "retriever.b=0.4"])] == \
        ["k1=1", "k1=2"]  # a range is a list of values


def test_calibrate_refuses_a_ranking_of_fewer_than_three_configurations():
    with pytest.raises(LabError, match="gives 2 configuration\\(s\\) here: a ranking to compare needs at least 3"):
        calibrate("calibration", "cranfield", {"title": ("title", {})},
                  overrides=["+experiments/calibration=bm25,dense_wordllama"])
