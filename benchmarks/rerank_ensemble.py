"""Two SciFact cross-encoders averaged: does a mix of `ce-scifact-bce` (BM25 negatives) and `ce-scifact-hyb` (the
first stage's own negatives) rerank best-scifact's candidates better than either alone?

    RETRIEVAL_LAB_DATA=<datasets> nice -n 10 .venv/bin/python benchmarks/rerank_ensemble.py \
        [--models ce-scifact-bce ce-scifact-hyb:onnx] [--depth 50]

Each model scores best-scifact's first-stage candidates (reranker off) through the lab's score cache; `model:onnx`
reads the onnx backend's store (the torch scores, as benchmarks/rerank_cost.py computed them). A setting mixes the
per-query min-max normalized scores, `a * first + (1 - a) * second`, and interpolates the first-stage score at `w`
exactly as `reranker.interpolate` does (`retrieval_lab.rerank.rerank`). Every (a, w) on a grid is scored on the
selection split (the 152 training queries `holdout=0.2 seed=0` keeps out of training) and on test; the setting with
the best selection nDCG@10 is reported on test beside the first stage (paired randomization test). Results go to
benchmarks/results/rerank_ensemble.json with the load average.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")

from hybrid import Results, selection_dataset  # noqa: E402  (benchmarks/ is the script's folder)

from retrieval_lab.evaluate.compare import paired_vs  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "rerank_ensemble.json"
FIRST_STAGE = ["+experiments=best-scifact", "reranker.name=none", "tracking.enabled=false"]


class Mixture:
    """A scorer (`.score(pairs) -> (scores, stats)`) that mixes its members' per-call min-max normalized scores; `rerank` calls it once
    per query, so the normalization is per query, as the interpolation's is."""

    def __init__(self, members: list, weights: list[float]):
        self.members, self.weights = members, weights

    def score(self, pairs):
        from retrieval_lab.fusion.normalization import minmax

        mixed = sum(w * minmax(m.score(pairs)[0].astype(np.float64)) for m, w in zip(self.members, self.weights))
        return mixed, {}  # no stats: `rerank` times the mixture itself


def scorers(models: list[str], cache_root):
    from retrieval_lab.config import compose_config
    from retrieval_lab.rerank import make_scorer, reranker_config

    base = reranker_config(compose_config(["+experiments=best-scifact"]).reranker)
    out = []
    for spec in models:
        name, _, backend = spec.partition(":")
        out.append(make_scorer(replace(base, name=name, model=name, backend=backend or "torch"), cache_root))
    return out


def split_runs(split: str):
    """(dataset, retriever, first-stage candidates) of one split."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.pipeline import Retriever

    ds = selection_dataset("scifact", "heldout") if split == "selection" else \
        load_dataset(compose_config(["dataset=scifact"]).dataset)
    retriever = Retriever(compose_config(FIRST_STAGE), ds.corpus)
    return ds, retriever, retriever.retrieve(ds.queries).candidates


def score(ds, retriever, candidates, scorer, depth: int, w: float) -> dict:
    from retrieval_lab.evaluate import evaluate
    from retrieval_lab.rerank import rerank

    text_of = dict(zip(retriever.passages.ids, retriever.passages.texts))
    run = candidates if scorer is None else rerank(candidates, ds.queries, text_of, scorer, depth, w)[0]
    documents = retriever.chain.documents.of(run, retriever.passages, 100)
    ev = evaluate(documents, ds.qrels, ["ndcg"], [10])
    return {"ndcg_at_10": ev.means["ndcg_at_10"],
            "per_query": dict(zip(ev.query_ids, ev.per_query["ndcg_at_10"].tolist()))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs=2, default=["ce-scifact-bce", "ce-scifact-hyb:onnx"])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--mix", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help="weights of the first model (the second gets the rest)")
    parser.add_argument("--interpolate", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from retrieval_lab.pipeline.build import cache_for

    results = Results(args.out)
    rows = {}
    for split in ("selection", "test"):
        ds, retriever, candidates = split_runs(split)
        members = scorers(args.models, cache_for(retriever.settings).root)
        rows[f"first_stage {split}"] = score(ds, retriever, candidates, None, args.depth, 0.0)
        for a in args.mix:
            for w in args.interpolate:
                row = score(ds, retriever, candidates, Mixture(members, [a, 1 - a]), args.depth, w)
                rows[f"{a} {w} {split}"] = row
                print(split, f"mix {a} w {w}", f"{row['ndcg_at_10']:.4f}", flush=True)
    settings = [key.removesuffix(" selection") for key in rows if key.endswith(" selection")
                and not key.startswith("first_stage")]
    chosen = max(settings, key=lambda k: rows[f"{k} selection"]["ndcg_at_10"])
    test = rows[f"{chosen} test"]
    summary = {"models": args.models, "depth": args.depth, "chosen": chosen,
               "selection_ndcg_at_10": rows[f"{chosen} selection"]["ndcg_at_10"], "test_ndcg_at_10": test["ndcg_at_10"],
               "vs_first_stage": paired_vs(test, rows["first_stage test"]),
               "grid": {k: v["ndcg_at_10"] for k, v in rows.items()},
               "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    results.put(" ".join(args.models) + f" {args.depth}", summary)
    print(f"\n| mix of {args.models[0]} | interpolate | selection nDCG@10 | test nDCG@10 |\n|---:|---:|---:|---:|")
    for key in sorted(settings, key=lambda k: -rows[f"{k} selection"]["ndcg_at_10"]):
        a, w = key.split()
        print(f"| {a} | {w} | {rows[f'{key} selection']['ndcg_at_10']:.4f} | {rows[f'{key} test']['ndcg_at_10']:.4f} |")
    vs = summary["vs_first_stage"]
    mix, w = chosen.split()
    print(f"\nfirst stage: selection {rows['first_stage selection']['ndcg_at_10']:.4f}, test "
          f"{rows['first_stage test']['ndcg_at_10']:.4f}. Chosen on selection: mix {mix}, interpolate {w}: test "
          f"{test['ndcg_at_10']:.4f} ({vs['delta']:+.4f} over the first stage, p {vs['p']:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
