"""benchmarks/rerank_cost.py's choice (retrieval_lab/rerank/budget.py): the best selection-split setting whose rerank
p50 fits the budget, reported on test beside the first stage; every setting it evaluates composes with the best SciFact
pipeline."""
from __future__ import annotations

import json

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.errors import DataError
from retrieval_lab.evaluate.compare import paired_rows
from retrieval_lab.rerank import budget
from retrieval_lab.rerank import reranker_config


def row(ndcg: float, per_query: list[float]) -> dict:
    return {"ndcg_at_10": ndcg, "per_query": {f"q{i}": v for i, v in enumerate(per_query)}}


def cost(p50: float) -> dict:
    return {"rerank_p50_ms": p50, "rerank_p95_ms": p50 * 1.2, "search_p50_ms": p50 + 40, "load_average": "0 0 0"}


DATA = {
    "cost": {"onnx 256 20": cost(520.0), "onnx_int8 256 10": cost(190.0), "onnx_int8 128 10": cost(90.0)},
    "quality": {
        "first_stage selection": row(0.70, [0.7] * 8), "first_stage test": row(0.75, [0.7, 0.8] * 4),
        # the best on selection is over budget; of the two within it, int8 256 scores higher
        "onnx 256 20 0.7 selection": row(0.74, [0.74] * 8), "onnx 256 20 0.7 test": row(0.77, [0.75, 0.79] * 4),
        "onnx_int8 256 10 0.7 selection": row(0.72, [0.72] * 8),
        "onnx_int8 256 10 0.7 test": row(0.765, [0.72, 0.81] * 4),
        "onnx_int8 128 10 0.8 selection": row(0.71, [0.71] * 8), "onnx_int8 128 10 0.8 test": row(0.76, [0.7] * 8),
        # an interrupted run: scored on selection (best of all within budget), never on test: not a candidate
        "onnx_int8 128 10 0.6 selection": row(0.80, [0.8] * 8),
    },
}


def test_the_choice_is_the_best_selection_score_within_the_budget_reported_on_test():
    chosen = budget.choose(DATA, budget_ms=300)
    assert chosen["setting"] == "onnx_int8 256 10 0.7"
    assert chosen["test_ndcg_at_10"] == 0.765 and chosen["first_stage_test_ndcg_at_10"] == 0.75
    assert abs(chosen["vs_first_stage"]["delta"] - 0.015) < 1e-9 and chosen["cost"]["rerank_p50_ms"] == 190.0
    assert budget.choose(DATA, budget_ms=1000)["setting"] == "onnx 256 20 0.7"
    assert budget.choose(DATA, budget_ms=50)["setting"] is None
    text = budget.table(DATA, 300)
    assert "`onnx_int8 256 10 0.7`" in text and "| torch |" not in text


def test_every_setting_composes_with_the_best_scifact_pipeline():
    from types import SimpleNamespace

    own = SimpleNamespace(reranker=None, first_stage=[])
    cfg = compose_config(budget.setting_overrides(own, "onnx_int8", 128, 10, 0.8))
    config = reranker_config(cfg.reranker)
    assert (config.backend, config.max_length, config.depth, config.interpolate) == ("onnx_int8", 128, 10, 0.8)
    assert config.model == "ce-scifact-bce" and cfg.embedder.model == "minilm_l6-scifact-ft"
    student = SimpleNamespace(reranker="ce-scifact-l3-distill", first_stage=[])  # another model, the same first stage
    config = reranker_config(compose_config(budget.setting_overrides(student, "torch", 256, 20, 0.7)).reranker)
    assert config.model == "ce-scifact-l3-distill" and config.name == "cross_encoder" and config.depth == 20
    assert not reranker_config(compose_config(budget.first_stage(own)).reranker).active
    deeper = SimpleNamespace(reranker=None, first_stage=["retriever.depth=1000"])  # --first-stage: another first stage
    for overrides in (budget.setting_overrides(deeper, "onnx", 256, 50, 0.7), budget.first_stage(deeper)):
        assert compose_config(overrides).retriever.depth == 1000


def test_paired_rows_tests_two_measured_rows_and_names_a_missing_one(tmp_path):
    deep, shallow = tmp_path / "deep.json", tmp_path / "shallow.json"
    deep.write_text(json.dumps({"quality": {"first_stage test": row(0.75, [0.9, 0.8, 0.7, 0.6])}}))
    shallow.write_text(json.dumps({"quality": {"first_stage test": row(0.35, [0.5, 0.4, 0.3, 0.2])}}))
    out = paired_rows(f"{deep}:first_stage test", f"{shallow}:first_stage test")
    assert out["delta"] == pytest.approx(0.4) and out["queries"] == 4
    assert out["p"] == pytest.approx(0.125, abs=0.02)  # 4 queries all one way: 2 of 16 sign patterns as extreme
    with pytest.raises(DataError, match=r"shallow.json: no quality row 'onnx 256 50 0.6 test' \(rows: first_stage"):
        paired_rows(f"{deep}:first_stage test", f"{shallow}:onnx 256 50 0.6 test")
