"""Can the recommendation of `retrieval-lab best` be trusted on the questions a team has? A simulation on the
per-query results of one fixed study (14 configurations) on SciFact (300 test queries) and NFCorpus (323).

    nice -n 15 .venv/bin/python benchmarks/recommendation.py study --dataset scifact    # evaluates the 14 once
    nice -n 15 .venv/bin/python benchmarks/recommendation.py study --dataset nfcorpus
    nice -n 15 .venv/bin/python benchmarks/recommendation.py simulate                   # 4 sizes x 200 subsets
    nice -n 15 .venv/bin/python benchmarks/recommendation.py simulate --margin 0.02 --datasets scifact
    .venv/bin/python benchmarks/recommendation.py table                                 # markdown for BENCHMARKS.md

`study` evaluates each configuration once on every test query through the chain `retrieval-lab run` builds
(benchmarks/cross_validate.py's Evaluator: its nDCG@10 per query is the one `run` logs in per_query.csv) and stores
the per-query values and p50 latency (the cost `best` uses). `simulate` draws, for N in 20/40/80/150, random subsets
of N questions; on each it runs `best`'s own procedure (`recommendation.recommend`: intervals, Holm-corrected tests,
non-inferiority at margin 0.01) and `best --cross-validate 5`'s, and judges them on the questions outside the subset:

- coverage: does the reported 95% interval contain the value on the other questions? For the recommended
  configuration's score, and for every configuration's delta to the top. The other questions' mean is itself noisy
  (M = 300 - N questions), so even an exact interval covers it less than 95% of the time: P(|Z| < 1.96 / sqrt(1 +
  N/M)), printed beside as "exact". The delta intervals are also drawn with the percentile bootstrap for comparison;
- false non-inferiority: the share of subsets whose named non-inferior configuration loses more than the margin to
  the top on the other questions;
- regret: the other questions' best mean minus the pick's, for "pick the maximum", "cheapest not significantly
  worse" (the rule `best` used before) and "cheapest shown non-inferior";
- optimism: the leaderboard's maximum minus the top's value on the other questions, against the same for the
  cross-validated (5 folds) estimate.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in logs

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "recommendation.json"
SIZES = (20, 40, 80, 150)
MARGIN = 0.01

_BM25 = ["retriever=bm25"]
_WORDLLAMA = ["embedder=wordllama", "embedder.lowercase=true"]  # WordLlama is case-sensitive (FIELD-NOTES)
_L3 = ["embedder=minilm_l3"]


def _hybrid(embedder: list[str], method: str, alpha: float) -> list[str]:
    return ["retriever=hybrid", *embedder, f"retriever.fusion.name={method}", f"retriever.fusion.alpha={alpha}"]


# The fixed study: four BM25 variants, two dense models, eight hybrids (fusion weights 0.3 / 0.5 / 0.7 and RRF).
STUDY = {
    "bm25": _BM25,
    "bm25 k1=1.2 b=0.75": [*_BM25, "retriever.k1=1.2", "retriever.b=0.75"],
    "bm25 unstemmed": [*_BM25, "retriever.tokenizer.stemmer=null", "retriever.tokenizer.stopwords=null"],
    "bm25 sentences": [*_BM25, "chunker=sentences"],
    "dense wordllama": ["retriever=dense", *_WORDLLAMA],
    "dense minilm_l3": ["retriever=dense", *_L3],
    **{f"hybrid wordllama convex {a}": _hybrid(_WORDLLAMA, "convex", a) for a in (0.3, 0.5, 0.7)},
    "hybrid wordllama rrf": _hybrid(_WORDLLAMA, "rrf", 0.5),
    **{f"hybrid minilm_l3 convex {a}": _hybrid(_L3, "convex", a) for a in (0.3, 0.5, 0.7)},
    "hybrid minilm_l3 rrf": _hybrid(_L3, "rrf", 0.5),
}


def cmd_study(args) -> None:
    from hybrid import Results  # benchmarks/ is the script's folder
    from cross_validate import Evaluator

    ev = Evaluator(args.dataset)
    rows, t0 = {}, time.perf_counter()
    for i, (name, overrides) in enumerate(STUDY.items(), 1):
        row = ev(overrides)
        rows[name] = {"overrides": overrides, "ndcg_at_10": row["ndcg_at_10"], "query_p50_ms": row["query_p50_ms"],
                      "per_query": row["per_query"]}
        print(f"[{i}/{len(STUDY)} {time.perf_counter() - t0:.0f} s] {name}: {row['ndcg_at_10']:.4f} "
              f"p50 {row['query_p50_ms']:.2f} ms", flush=True)
    Results(args.out).put("study", args.dataset, {"configurations": rows, "uptime": os.getloadavg()})


def exact_coverage(n: int, m: int, level: float = 0.95) -> float:
    """How often an exact interval of a mean over n questions covers the mean over m other questions."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + level / 2)
    return float(2 * stats.norm.cdf(z / math.sqrt(1 + n / m)) - 1)


def percentile_bootstrap(d: np.ndarray, rng) -> tuple[float, float]:
    from scipy import stats

    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    res = stats.bootstrap((d,), np.mean, n_resamples=1000, method="percentile", vectorized=True, random_state=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def simulate_one(names, matrix, costs, n: int, subsets: int, seed: int, margin: float = MARGIN) -> dict:
    from retrieval_lab.evaluate.crossval import cross_validate, query_folds
    from retrieval_lab.evaluate.recommendation import recommend
    from retrieval_lab.evaluate.significance import Margin

    rng = np.random.default_rng(seed)
    k, q = matrix.shape
    qids = [str(i) for i in range(q)]
    by_cost = sorted(range(k), key=lambda i: costs[i])  # cheaper first: CV ties go to the cheaper, as in best
    acc: dict[str, list] = {key: [] for key in (
        "score_cover", "score_cover_all", "delta_cover", "delta_cover_boot", "ni_named", "false_ni", "old_false",
        "regret_max", "regret_old", "regret_new", "optimism_max", "optimism_cv", "new_is_top", "old_is_top")}
    for _ in range(subsets):
        inside = np.zeros(q, dtype=bool)
        inside[rng.choice(q, size=n, replace=False)] = True
        sub, other = matrix[:, inside], matrix[:, ~inside]
        held = other.mean(axis=1)
        rec = recommend(names, sub, costs, margin=Margin(margin), trials=2000, resamples=100,
                        seed=int(rng.integers(1 << 31)))
        top, new = rec.top, rec.pick
        old_eligible = [r for r in rec.rows if not r.significantly_worse(rec.alpha)]
        old = min(old_eligible, key=lambda r: (r.cost, -r.mean))
        acc["score_cover"].append(new.mean_low <= held[new.index] <= new.mean_high)
        acc["score_cover_all"] += [r.mean_low <= held[r.index] <= r.mean_high for r in rec.rows]
        for r in rec.rows[1:]:
            truth = held[r.index] - held[top.index]
            acc["delta_cover"].append(r.delta_low <= truth <= r.delta_high)
            low, high = percentile_bootstrap(sub[r.index] - sub[top.index], rng)
            acc["delta_cover_boot"].append(low <= truth <= high)
        named = rec.reason == "non-inferior"
        acc["ni_named"].append(named)
        acc["false_ni"].append(named and held[top.index] - held[new.index] > margin)
        acc["old_false"].append(old is not top and held[top.index] - held[old.index] > margin)
        best_held = held.max()
        acc["regret_max"].append(best_held - held[top.index])
        acc["regret_old"].append(best_held - held[old.index])
        acc["regret_new"].append(best_held - held[new.index])
        acc["new_is_top"].append(new is top)
        acc["old_is_top"].append(old is top)
        acc["optimism_max"].append(top.mean - held[top.index])
        sub_ids = [qids[i] for i in np.flatnonzero(inside)]
        per_query = {names[i]: dict(zip(sub_ids, sub[i].tolist())) for i in by_cost}
        cv = cross_validate(per_query, query_folds(sub_ids, 5, int(rng.integers(1 << 31))))
        acc["optimism_cv"].append(cv.held_out_mean - held[top.index])
    out = {key: float(np.mean(values)) for key, values in acc.items()}
    out.update({"optimism_max_sd": float(np.std(acc["optimism_max"])),
                "optimism_cv_sd": float(np.std(acc["optimism_cv"])),
                "exact_coverage": exact_coverage(n, q - n), "subsets": subsets, "n": n})
    return out


def cmd_simulate(args) -> None:
    from hybrid import Results

    results = Results(args.out)
    for dataset, study in results.data.get("study", {}).items():
        if args.datasets and dataset not in args.datasets:
            continue
        rows = study["configurations"]
        names = list(rows)
        qids = sorted(rows[names[0]]["per_query"])
        matrix = np.array([[rows[name]["per_query"][q] for q in qids] for name in names])
        costs = [rows[name]["query_p50_ms"] for name in names]
        for n in args.sizes:
            t0 = time.perf_counter()
            record = simulate_one(names, matrix, costs, n, args.subsets, args.seed, args.margin)
            record.update({"seconds": time.perf_counter() - t0, "uptime": os.getloadavg(), "margin": args.margin})
            key = dataset if args.margin == MARGIN else f"{dataset}, margin {args.margin}"
            results.put("simulate", key, str(n), record)
            print(dataset, n, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)


def cmd_table(args) -> None:
    data = json.loads(args.out.read_text())
    for dataset, study in data.get("study", {}).items():
        rows = study["configurations"]
        n = len(next(iter(rows.values()))["per_query"])
        print(f"\n#### The study on {dataset} ({len(rows)} configurations, {n} test queries; nDCG@10 on all of them)\n")
        print("| configuration | nDCG@10 | p50 ms |\n|---|---:|---:|")
        for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["ndcg_at_10"]):
            print(f"| {name} | {row['ndcg_at_10']:.4f} | {row['query_p50_ms']:.2f} |")
    print("\n| dataset | N | score coverage (pick / all; exact) | delta coverage t (bootstrap) | NI named | "
          "false NI | old rule loses > M | regret max / old / new | optimism max | optimism CV |")
    print("|---|---:|---|---|---:|---:|---:|---|---|---|")
    for dataset, sizes in data.get("simulate", {}).items():
        for n, r in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            print(f"| {dataset} | {n} | {r['score_cover']:.3f} / {r['score_cover_all']:.3f}; {r['exact_coverage']:.3f} "
                  f"| {r['delta_cover']:.3f} ({r['delta_cover_boot']:.3f}) | {r['ni_named']:.3f} | "
                  f"{r['false_ni']:.3f} | {r['old_false']:.3f} | {r['regret_max']:.4f} / {r['regret_old']:.4f} / "
                  f"{r['regret_new']:.4f} | {r['optimism_max']:+.4f} ± {r['optimism_max_sd']:.4f} | "
                  f"{r['optimism_cv']:+.4f} ± {r['optimism_cv_sd']:.4f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("study", help="evaluate the 14 configurations once on a dataset's test queries")
    p.add_argument("--dataset", required=True, choices=["scifact", "nfcorpus"])
    p.set_defaults(func=cmd_study)
    p = sub.add_parser("simulate", help="subsets of N questions, judged on the others")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--subsets", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--datasets", nargs="+")
    p.add_argument("--margin", type=float, default=MARGIN, help="non-inferiority margin (absolute)")
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("table")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
