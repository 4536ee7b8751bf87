"""Significance tests, Holm correction, Pareto front, resume hashes and the export safety checks (known answers)."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.evaluate.significance import against_top, holm, paired_ttest, randomization_test
from retrieval_lab.pipeline.export import UnsafeConfigError, check_targets, read_export
from retrieval_lab.sweep.report import pareto_front
from retrieval_lab.sweep.state import config_hash, run_name_from_overrides


def test_holm_matches_the_textbook_example():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> monotone max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # step-down stays monotone
    assert holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])
    assert holm([]) == []


def test_randomization_test_exact_for_all_equal_and_small_for_a_clear_gain():
    a = np.linspace(0, 1, 50)
    assert randomization_test(a, a) == 1.0
    p = randomization_test(a + 0.2, a, trials=2000)
    assert p == pytest.approx(1 / 2001)  # every sign flip is smaller than the observed constant gain
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, 200)
    assert randomization_test(noise, np.zeros(200), trials=2000) > 0.05
    # The randomization test agrees with the t-test on a moderate effect.
    b = rng.normal(0.5, 0.2, 300)
    c = b - rng.normal(0.03, 0.2, 300)
    assert randomization_test(b, c, trials=4000) == pytest.approx(paired_ttest(b, c), abs=0.02)


def test_against_top_tests_each_candidate_and_holm_corrects():
    top = np.linspace(0.5, 1, 40)
    same, worse = top.copy(), top - 0.2
    raw, adjusted = against_top(top, [same, worse], trials=2000)
    assert raw == [1.0, pytest.approx(1 / 2001)]
    assert adjusted == pytest.approx(holm(raw))
    assert against_top(top, [worse], test="ttest")[0][0] == 0.0  # a constant difference: certain


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 0.5), (2.0, 0.6), (1.5, 0.4), (3.0, 0.6), (4.0, 0.7), (0.5, 0.3)]
    assert pareto_front(points) == [5, 0, 1, 4]


def test_resume_hash_ignores_where_things_live_but_not_what_they_are():
    cfg = {"dataset": {"name": "scifact", "root": "/a", "split": "test"}, "retriever": {"k1": 0.9},
           "tracking": {"experiment": "x"}, "cache": {"dir": "/c"}, "sweep": {"metric": "ndcg_at_10"}}
    moved = {**cfg, "dataset": {**cfg["dataset"], "root": "/b"}, "tracking": {"experiment": "y"},
             "cache": {"dir": "/d"}}
    assert config_hash(cfg, "data1", "v1") == config_hash(moved, "data1", "v1")
    assert config_hash(cfg, "data1", "v1") != config_hash(cfg, "data2", "v1")
    assert config_hash(cfg, "data1", "v1") != config_hash(cfg, "data1", "v2")
    assert config_hash(cfg, "data1", "v1") != config_hash({**cfg, "retriever": {"k1": 1.2}}, "data1", "v1")


def test_run_names_use_the_swept_keys():
    overrides = ["retriever.k1=1.2", "dataset.path=/x/y", "+experiments=quickstart", "chunker=sentences"]
    assert run_name_from_overrides(overrides, ["retriever.k1", "chunker"]) == "k1=1.2 chunker=sentences"
    assert run_name_from_overrides(["hydra.launcher.n_jobs=2"]) == "default"


@pytest.mark.parametrize("data", [
    {"config": {"retriever": {"_target_": "os.system", "command": "echo pwned"}}},
    {"config": {"x": [{"_target_": "subprocess.Popen"}]}},
    {"config": {"x": {"_target_": 3}}},
])
def test_foreign_targets_are_refused(data):
    with pytest.raises(UnsafeConfigError, match="only retrieval_lab components"):
        check_targets(data)


def test_own_targets_pass():
    check_targets({"config": {"x": {"_target_": "retrieval_lab.sweep.callbacks.SweepCallback"}}})


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "best.yaml"
    evil.write_text("config: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception) as info:
        read_export(evil)
    assert "not valid YAML" in str(info.value)
    evil.write_text("config:\n  retriever:\n    _target_: builtins.eval\n")
    with pytest.raises(UnsafeConfigError, match="config.retriever._target_"):
        read_export(evil)
