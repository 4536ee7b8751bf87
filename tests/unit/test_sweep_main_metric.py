"""The sweep's main metric may be a span metric: it is read from the extra metrics, never replaced by nDCG."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from retrieval_lab.errors import ConfigError
from retrieval_lab.sweep.job import main_metric


def outcome(means: dict, extra: dict):
    return SimpleNamespace(evaluation=SimpleNamespace(means=means), extra_metrics=extra)


def test_span_metric_comes_from_the_extra_metrics():
    result = outcome({"ndcg_at_10": 0.83}, {"evidence_coverage_budget_512": 0.39})
    assert main_metric(result, "evidence_coverage_budget_512") == 0.39
    assert main_metric(result, "ndcg_at_10") == 0.83


def test_a_metric_the_configuration_does_not_have_is_a_config_error():
    with pytest.raises(ConfigError, match="sweep.metric.*'evidence_coverage_budget_512' is not a metric"):
        main_metric(outcome({"ndcg_at_10": 0.83}, {}), "evidence_coverage_budget_512")


def test_a_cutoff_missing_from_eval_k_fails_before_any_work_and_its_fix_works():
    """`eval.k=[1,3]` with the default sweep.metric ndcg_at_10: every configuration used to run, then fail."""
    import re

    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import validate
    from retrieval_lab.sweep.job import check_main_metric

    overrides = ["eval.k=[1,3]", "eval.depth=10"]
    with pytest.raises(ConfigError) as err:
        check_main_metric("ndcg_at_10", validate(compose_config(overrides)).eval)
    message = str(err.value)
    assert message.startswith("config key 'sweep.metric': 'ndcg_at_10' needs the cutoff 10 in eval.k, which is [1, 3]")
    fixes = ["".join(found) for found in re.findall(r"\((eval\.k=\S+)\)|(sweep\.metric=\w+)",
                                                     message.split("fix:")[1])]
    assert fixes == ["eval.k=[1,3,10]", "sweep.metric=ndcg_at_3"], message
    for fix in fixes:
        followed = compose_config([*overrides, fix])
        check_main_metric(followed.sweep.metric, validate(followed).eval)  # either printed fix works
    check_main_metric("evidence_coverage_budget_512", validate(compose_config(overrides)).eval)  # checked after
