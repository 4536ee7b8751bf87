"""experiments/best-<dataset>.yaml: the pipelines chosen by cross-validation (benchmarks/cross_validate.py) compose to
exactly the candidate the cross-validation chose, and the Cranfield one runs end to end."""
from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import compose_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import cross_validate  # noqa: E402

# dataset -> the grid candidate each committed pipeline stands for (experiments/README.md, "Best pipeline per dataset")
CHOSEN = {
    "arguana": "bm25(3.0,1.0)+minilm_l6+minilm_l3 convex zscore [0.7, 0.2, 0.1]",
    "cranfield": "bm25(2.0,0.4)+minilm_l6+minilm_l3 convex minmax [0.4, 0.5, 0.1]",
}


def resolved(overrides: list[str]) -> dict:
    body = OmegaConf.to_container(compose_config(overrides), resolve=True)
    body.pop("tracking")  # the study names its own MLflow experiment
    return body


@pytest.mark.parametrize("dataset", sorted(CHOSEN))
def test_a_best_pipeline_is_the_candidate_cross_validation_chose(dataset):
    study = resolved([f"+experiments=best-{dataset}"])
    candidate = resolved([f"dataset={dataset}", *cross_validate.grid(dataset)[CHOSEN[dataset]]])
    assert study == candidate
    assert study["dataset"]["name"] == dataset


def test_best_cranfield_runs_end_to_end_and_beats_bm25(data_root):
    """On 12 Cranfield queries over a 150-document sample holding their judged documents (so that a cold cache
    encodes 150 documents, not 1,400): three first stages fused, above BM25's default on the same queries."""
    from retrieval_lab.data import dataset_from_config
    from retrieval_lab.pipeline import run_experiment
    from retrieval_lab.types import Corpus, Qrels

    cfg = compose_config(["+experiments=best-cranfield", f"dataset.root={data_root}", "tracking.enabled=false"])
    full = dataset_from_config(cfg.dataset)
    queries = set(random.Random(0).sample(sorted(full.queries.ids), 12))
    qrels = Qrels({q: docs for q, docs in full.qrels.items() if q in queries})
    judged = {d for docs in qrels.values() for d in docs}
    others = [d for d in full.corpus.ids if d not in judged]
    keep = judged | set(random.Random(0).sample(others, 150 - len(judged)))
    rows = [i for i, d in enumerate(full.corpus.ids) if d in keep]
    corpus = Corpus([full.corpus.ids[i] for i in rows], [full.corpus.titles[i] for i in rows],
                    [full.corpus.texts[i] for i in rows])
    sample = replace(full, corpus=corpus, queries=full.queries.subset(queries), qrels=qrels)

    best = run_experiment(cfg, dataset=sample)
    assert set(best.trace.runs) >= {"bm25", "dense", "dense2", "fusion"}
    assert {"bm25_ndcg_at_10", "dense_ndcg_at_10", "dense2_ndcg_at_10"} <= set(best.extra_metrics)
    bm25 = run_experiment(compose_config(["dataset=cranfield", f"dataset.root={data_root}", "tracking.enabled=false"]),
                          dataset=sample)
    assert best.evaluation.means["ndcg_at_10"] > bm25.evaluation.means["ndcg_at_10"]
