"""MMR diversification against none: evidence coverage within a 512-token context, nDCG@10 and recall@10, paired.

One pipeline with a dense stage, so the passages' embeddings are the ones the dense stage cached: the BM25 +
MiniLM-L3 hybrid (`+pipeline=hybrid_minilm_l3`) over recursive chunks of 128 tokens (`chunker=recursive`, where
neighbouring chunks of one document are often near-duplicates), returning the chunks (`unit=chunk`). Each
configuration differs only in `diversify`: none, then `diversify=mmr` at each lambda (`diversify.depth` 20: the top
20 passages of the fused run are reordered). The first-stage runs come from the cache after the first
configuration, so the rows differ by the diversify step alone.

Per dataset and lambda: the mean of each metric, its difference to `diversify=none`, and the two-sided paired
randomization test of that difference over the questions (evaluate/significance.py, 10,000 sign flips), with
Holm's correction over the lambdas of one dataset and metric. Evidence coverage is over the questions with span
gold (SciFact: the rationale sentences of 188 of the 300 test claims; the R manuals: the evidence quotes of all 88
questions); nDCG@10 and recall@10 over the judged questions (documents).

    RETRIEVAL_LAB_CACHE=<cache> nice -n 10 python benchmarks/mmr.py [--datasets scifact r_manuals]
        [--lambdas 0.9 0.7 0.5] [--depth 20]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

METRICS = ["evidence_coverage_budget_512", "ndcg_at_10", "recall_at_10"]
SHOWN = {"evidence_coverage_budget_512": "evidence cov @512 tok", "ndcg_at_10": "nDCG@10",
         "recall_at_10": "recall@10"}


def per_query(outcome, metric: str) -> dict[str, float]:
    if metric in outcome.extra_per_query:  # span metrics: the questions with span gold
        return outcome.extra_per_query[metric]
    return dict(zip(outcome.evaluation.query_ids, map(float, outcome.evaluation.per_query[metric])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "r_manuals"])
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.9, 0.7, 0.5])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--out", default="benchmarks/results/mmr.json")
    args = parser.parse_args()

    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.evaluate.significance import holm, randomization_test
    from retrieval_lab.pipeline import run_experiment

    rows = []
    for name in args.datasets:
        base = [f"dataset={name}", "+pipeline=hybrid_minilm_l3", "chunker=recursive", "unit=chunk",
                "tracking.enabled=false"]
        cfg = compose_config(base)
        dataset = load_dataset(cfg.dataset, cache_root=cfg.cache.dir)
        settings = [("none", [])] + [(f"mmr {lam:g}", ["diversify=mmr", f"diversify.lambda={lam}",
                                                         f"diversify.depth={args.depth}"]) for lam in args.lambdas]
        outcomes = {}
        for label, overrides in settings:
            t0 = time.perf_counter()
            outcomes[label] = run_experiment(compose_config([*base, *overrides]), dataset=dataset)
            timings = outcomes[label].timings
            print(f"{name} {label}: {time.perf_counter() - t0:.1f} s, diversify p50 "
                  f"{timings.get('diversify_p50_ms', 0.0):.2f} ms, end to end p50 {timings['query_p50_ms']:.1f} ms",
                  flush=True)
        base_outcome = outcomes["none"]
        for metric in METRICS:
            reference = per_query(base_outcome, metric)
            ids = sorted(reference)
            tested = []
            for label, _ in settings[1:]:
                values = per_query(outcomes[label], metric)
                a, b = [values[q] for q in ids], [reference[q] for q in ids]
                tested.append((label, sum(a) / len(a), sum(a) / len(a) - sum(b) / len(b),
                               randomization_test(a, b, trials=args.trials)))
            adjusted = holm([p for *_, p in tested])
            rows.append({"dataset": name, "metric": metric, "questions": len(ids), "label": "none",
                         "mean": sum(reference.values()) / len(ids), "delta": None, "p": None, "p_holm": None,
                         "diversify_p50_ms": None})
            for (label, mean, delta, p), p_holm in zip(tested, adjusted):
                rows.append({"dataset": name, "metric": metric, "questions": len(ids), "label": label, "mean": mean,
                             "delta": delta, "p": p, "p_holm": p_holm,
                             "diversify_p50_ms": outcomes[label].timings.get("diversify_p50_ms")})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print()
    print("| dataset | metric (questions) | diversify | mean | vs none | p (Holm) | MMR p50 ms |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        delta = "" if r["delta"] is None else f"{r['delta']:+.4f}"
        p = "" if r["p"] is None else f"{r['p']:.4f} ({r['p_holm']:.4f})"
        ms = "" if r["diversify_p50_ms"] is None else f"{r['diversify_p50_ms']:.2f}"
        print(f"| {r['dataset']} | {SHOWN[r['metric']]} ({r['questions']}) | {r['label']} | {r['mean']:.4f} | "
              f"{delta} | {p} | {ms} |")


if __name__ == "__main__":
    main()
