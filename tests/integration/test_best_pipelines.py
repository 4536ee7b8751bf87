"""experiments/best-<dataset>.yaml: the pipelines chosen by cross-validation (benchmarks/cross_validate.py, over the
grid of retrieval_lab/sweep/grids.py) compose to exactly the candidate the cross-validation chose, and the Cranfield
one runs end to end; the SciFact and NFCorpus ones compose to exactly the run BENCHMARKS.md measured."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import compose_config
from retrieval_lab.sweep.grids import grid
from tests.integration.samples import judged_sample

# dataset -> the grid candidate each committed pipeline stands for (experiments/README.md, "Best pipeline per dataset")
CHOSEN = {
    "arguana": "bm25(3.0,1.0)+minilm_l6+minilm_l3 convex zscore [0.7, 0.2, 0.1]",
    "cranfield": "bm25(2.0,0.4)+minilm_l6+minilm_l3 convex minmax [0.4, 0.5, 0.1]",
}


# dataset -> the command line of the measured run (BENCHMARKS.md, "Hybrid, reranking, fine-tuning"), with the
# settings it ran under spelled out where a default could move (fusion alpha 0.5 -> 0.6 happened; backend torch);
# NFCorpus's is `benchmarks/hybrid.py fusion ... --bm25 rm3.fb_docs=10`'s chosen run (experiments/README.md, RM3)
MEASURED = {
    "scifact": ["dataset=scifact", "retriever=hybrid", "embedder.model=minilm_l6-scifact-ft",
                "embedder.name=minilm_l6-scifact-ft", "embedder.backend=torch", "embedder.max_tokens=256",
                "retriever.fusion.name=convex", "retriever.fusion.normalization=zscore", "retriever.fusion.alpha=0.5",
                "retriever.depth=100", "reranker=cross_encoder",
                "reranker.model=ce-scifact-bce", "reranker.max_length=256", "reranker.batch_size=32",
                "reranker.depth=50", "reranker.interpolate=0.7"],
    "nfcorpus": ["dataset=nfcorpus", "retriever=hybrid", "embedder.model=minilm_l6-nfcorpus-ft2",
                 "embedder.name=minilm_l6-nfcorpus-ft2", "embedder.backend=torch", "embedder.max_tokens=256",
                 "retriever.fusion.normalization=zscore", "retriever.depth=1000", "retriever.fusion.alpha=0.3",
                 "retriever.inputs.bm25.rm3.fb_docs=10"],
}


def resolved(overrides: list[str]) -> dict:
    body = OmegaConf.to_container(compose_config(overrides), resolve=True)
    body.pop("tracking")  # the study names its own MLflow experiment
    body.pop("requires", None)  # the commands that train its models (tests/unit/test_reproduce.py)
    return body


@pytest.mark.parametrize("dataset", sorted(CHOSEN))
def test_a_best_pipeline_is_the_candidate_cross_validation_chose(dataset):
    study = resolved([f"+experiments=best-{dataset}"])
    candidate = resolved([f"dataset={dataset}", *grid(dataset)[CHOSEN[dataset]]])
    assert study == candidate
    assert study["dataset"]["name"] == dataset


@pytest.mark.parametrize("dataset", sorted(MEASURED))
def test_a_best_pipeline_with_trained_models_is_the_measured_run(dataset):
    study = resolved([f"+experiments=best-{dataset}"])
    assert study == resolved(MEASURED[dataset])
    fusion = study["retriever"]["fusion"]
    assert (fusion["name"], fusion["normalization"], fusion["alpha"]) == \
        {"scifact": ("convex", "zscore", 0.5), "nfcorpus": ("convex", "zscore", 0.3)}[dataset]
    assert compose_config([f"+experiments=best-{dataset}"]).tracking.experiment == f"best-{dataset}"


def test_best_cranfield_runs_end_to_end_and_beats_bm25(data_root):
    """On 12 Cranfield queries over a 150-document sample holding their judged documents (so that a cold cache
    encodes 150 documents, not 1,400): three first stages fused, above BM25's default on the same queries."""
    from retrieval_lab.data import load_dataset
    from retrieval_lab.pipeline import run_experiment

    cfg = compose_config(["+experiments=best-cranfield", f"dataset.root={data_root}", "tracking.enabled=false"])
    sample = judged_sample(load_dataset(cfg.dataset), queries=12, docs=150)

    best = run_experiment(cfg, dataset=sample)
    assert set(best.trace.runs) >= {"bm25", "dense", "dense2", "fusion"}
    assert {"bm25_ndcg_at_10", "dense_ndcg_at_10", "dense2_ndcg_at_10"} <= set(best.extra_metrics)
    bm25 = run_experiment(compose_config(["dataset=cranfield", f"dataset.root={data_root}", "tracking.enabled=false"]),
                          dataset=sample)
    assert best.evaluation.means["ndcg_at_10"] > bm25.evaluation.means["ndcg_at_10"]


def test_the_rm3_variants_of_a_grid_expand_only_bm25_and_come_after_the_others():
    """`select --rm3`: each RM3 candidate is its twin without RM3 plus RM3 on the BM25 stage, listed last, so that
    a tie on the training folds keeps the cheaper pipeline; the grid without --rm3 has none of them."""
    plain, wide = grid("cranfield"), grid("cranfield", rm3=True)
    assert list(wide)[:len(plain)] == list(plain) and len(wide) > len(plain)
    assert not any(name.startswith("rm3 ") for name in plain)
    for name in ("bm25 k1=2.0 b=0.6", CHOSEN["cranfield"]):
        with_rm3 = resolved(["dataset=cranfield", *wide[f"rm3 {name}"]])
        without = resolved(["dataset=cranfield", *plain[name]])
        bm25_of = (lambda body: body["retriever"]) if name.startswith("bm25 k1") else \
            (lambda body: body["retriever"]["inputs"]["bm25"])
        assert bm25_of(with_rm3).pop("rm3")["fb_docs"] == 10 and bm25_of(without).pop("rm3")["fb_docs"] == 0
        assert with_rm3 == without
