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
