"""Best pipeline per dataset chosen by cross-validation over query folds, and which default fusion holds up across
datasets. ArguAna and Cranfield have test qrels only: a grid's best test score would report the luck of the pick,
so settings are chosen on 4 of 5 query folds and scored on the fifth, and the mean over held-out folds is reported.

    nice -n 15 .venv/bin/python benchmarks/cross_validate.py select --dataset arguana      # 1,340 candidates
    nice -n 15 .venv/bin/python benchmarks/cross_validate.py select --dataset cranfield    # 2,318 candidates
    ... select --dataset cranfield --rm3                   # 3,474: also every BM25 family with RM3 expansion
    ... select --dataset arguana --only "bm25 k1"          # part of the grid (here: BM25 alone), stored apart
    ... compare --dataset arguana "<candidate>" "<candidate>"   # paired test of two candidates, all test queries
    nice -n 15 .venv/bin/python benchmarks/cross_validate.py fusion-default   # the 4 datasets x MiniLM-L6, WordLlama
    .venv/bin/python benchmarks/cross_validate.py table          # markdown tables from the JSON, for BENCHMARKS.md

Every candidate is evaluated once on every test query through the chain `retrieval-lab run` builds for its overrides
(its nDCG@10 is the one `run` logs); first-stage runs and embeddings come from the stage cache, so the fusion
variants of a grid only fuse and score. Folds: 5, seed 0 (`retrieval_lab.evaluate.crossval`); an exact tie goes to
the candidate listed first (the grids list the cheaper families first). The chosen pipeline is the one picked most
often over the folds (ties: the higher mean over all queries); it is then tested against BM25 (the lab's default,
k1 0.9 b 0.4) over all test queries with the randomization test of `retrieval-lab best`. That test is of the chosen
pipeline, not of the choice: its own test score is optimistic, the held-out mean is the estimate. Results go to
benchmarks/results/cross_validate.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in logs

from hybrid import Results  # noqa: E402  (benchmarks/ is the script's folder)

from retrieval_lab.sweep.grids import DEFAULTS, GRIDS, bm25, dense, grid, hybrid  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "cross_validate.json"
BM25 = "bm25 k1=0.9 b=0.4"  # the lab's default BM25: the baseline of every paired test
SHOWN_DEFAULTS = ["convex minmax 0.5", "convex minmax 0.6", "convex zscore 0.5", "rrf 60"]  # of DEFAULTS, in the table


class Evaluator:
    """Per-query nDCG@10 of each candidate on one loaded test split, through the chain `retrieval-lab run` uses.

    The chain is built once per configuration without its fusion settings, and each fusion variant runs it with its
    own fusion step (`dataclasses.replace`): the cached first-stage runs are replayed, and the per-run statistics
    that `run_experiment` adds (truncated passages counted with the tokenizer: seconds on ArguAna) are not
    recomputed for every weight. The evaluation is `run_experiment`'s, so a candidate scores what `retrieval-lab run`
    with the same overrides logs."""

    def __init__(self, name: str):
        from retrieval_lab.config import compose_config
        from retrieval_lab.data import load_dataset

        self.name = name
        self.dataset = load_dataset(compose_config([f"dataset={name}"]).dataset)
        self.memo: dict[tuple[str, ...], dict] = {}
        self.retrievers: dict[str, object] = {}

    def _retriever(self, cfg, settings):
        from omegaconf import OmegaConf

        from retrieval_lab.pipeline import Retriever
        from retrieval_lab.pipeline.build import cache_for, first_stages

        body = OmegaConf.to_container(cfg, resolve=True)
        body.pop("tracking", None)
        body["retriever"].pop("fusion", None)
        key = json.dumps(body, sort_keys=True, default=str)
        if key not in self.retrievers:
            cache = cache_for(settings)
            self.retrievers[key] = Retriever(cfg, self.dataset.corpus, cache, settings,
                                             first_stages(settings, cache))
        return self.retrievers[key]

    def __call__(self, overrides: list[str]) -> dict:
        from dataclasses import replace

        from retrieval_lab.config import compose_config
        from retrieval_lab.evaluate import evaluate
        from retrieval_lab.pipeline.build import read_config
        from retrieval_lab.pipeline.steps import FusionStep

        key = tuple(overrides)
        if key not in self.memo:
            cfg = compose_config([f"dataset={self.name}", "tracking.enabled=false", *overrides])
            settings = read_config(cfg)
            t0 = time.perf_counter()
            chain = self._retriever(cfg, settings).chain
            if settings.fusion is not None:
                chain = replace(chain, steps=[FusionStep(settings.fusion, step.reads) if isinstance(step, FusionStep)
                                              else step for step in chain.steps])
            trace = chain.run(self.dataset.queries, settings.eval.depth)
            ev = evaluate(trace.documents, self.dataset.qrels, ["ndcg", "recall"], [10, 100])
            self.memo[key] = {
                "ndcg_at_10": ev.means["ndcg_at_10"], "recall_at_100": ev.means["recall_at_100"],
                "query_p50_ms": trace.latency_metrics()["query_p50_ms"], "seconds": time.perf_counter() - t0,
                "per_query": dict(zip(ev.query_ids, ev.per_query["ndcg_at_10"].tolist()))}
        return self.memo[key]


def summary(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "per_query"}


def cv_record(cv) -> dict:
    return {"held_out_mean": cv.held_out_mean, "held_out_sd": cv.held_out_sd, "chosen": cv.chosen,
            "picks": dict(cv.picks),
            "folds": [{"picked": f.picked, "train_mean": f.train_mean, "held_out_mean": f.held_out_mean,
                       "queries": f.queries} for f in cv.folds]}


def paired_vs(a: dict, b: dict) -> dict:
    """Mean difference and two-sided randomization-test p of a - b over the queries both scored."""
    from retrieval_lab.evaluate.significance import randomization_test

    queries = sorted(set(a["per_query"]) & set(b["per_query"]))
    x = [a["per_query"][q] for q in queries]
    y = [b["per_query"][q] for q in queries]
    return {"delta": sum(x) / len(x) - sum(y) / len(y), "p": randomization_test(x, y), "queries": len(queries)}


def cmd_select(args) -> None:
    from retrieval_lab.evaluate.crossval import cross_validate, query_folds

    results = Results(args.out)
    ev = Evaluator(args.dataset)
    candidates = grid(args.dataset, args.rm3)
    if args.only:
        candidates = {k: v for k, v in candidates.items() if any(s in k for s in args.only) or k == BM25}
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    log(f"{args.dataset}: {len(candidates)} candidates, {len(ev.dataset.queries)} test queries, "
        f"{args.folds} folds (seed {args.seed})")
    rows = {}
    t0 = time.perf_counter()
    for i, (name, overrides) in enumerate(candidates.items(), 1):
        rows[name] = ev(overrides)
        log(f"[{i}/{len(candidates)} {time.perf_counter() - t0:.0f} s] {name}: {rows[name]['ndcg_at_10']:.4f} "
            f"({rows[name]['seconds']:.1f} s)")
    folds = query_folds(ev.dataset.qrels, args.folds, args.seed)
    cv = cross_validate({name: row["per_query"] for name, row in rows.items()}, folds)
    chosen = rows[cv.chosen]
    baseline = rows.get(BM25) or ev(bm25(0.9, 0.4))
    record = {"queries": len(ev.dataset.qrels), "folds": args.folds, "seed": args.seed,
              "candidates": {name: {"overrides": candidates[name], **summary(row)} for name, row in rows.items()},
              "cv": cv_record(cv),
              "chosen": {"name": cv.chosen, "overrides": candidates[cv.chosen], "test_ndcg_at_10": chosen["ndcg_at_10"],
                         "test_recall_at_100": chosen["recall_at_100"], "vs_bm25": paired_vs(chosen, baseline),
                         "bm25_ndcg_at_10": baseline["ndcg_at_10"]},
              "uptime": os.getloadavg()}
    results.put("select", args.dataset + (" rm3" if args.rm3 else "")
                + (f" only={','.join(args.only)}" if args.only else ""), record)
    for f in cv.folds:
        log(f"fold {f.index}: picked {f.picked} (train {f.train_mean:.4f}) -> held out {f.held_out_mean:.4f}")
    log(f"held-out mean {cv.held_out_mean:.4f} +- {cv.held_out_sd:.4f}; chosen {cv.chosen} "
        f"(test {chosen['ndcg_at_10']:.4f}, optimistic); vs BM25 {baseline['ndcg_at_10']:.4f}: "
        f"{record['chosen']['vs_bm25']}")


def cmd_compare(args) -> None:
    """Paired randomization test of two candidates of a dataset's grid over all its test queries (e.g. the chosen
    pipeline against the BM25 setting that cross-validation picks among BM25 settings alone)."""
    ev = Evaluator(args.dataset)
    candidates = grid(args.dataset, rm3=True)
    a, b = (ev(candidates[name]) for name in (args.a, args.b))
    record = {"a": args.a, "b": args.b, "a_ndcg_at_10": a["ndcg_at_10"], "b_ndcg_at_10": b["ndcg_at_10"],
              **paired_vs(a, b)}
    Results(args.out).put("compare", args.dataset, f"{args.a} | {args.b}", record)
    print(json.dumps(record, indent=1))


def cmd_fusion_default(args) -> None:
    """Per dataset and dense model: BM25, the dense model, every fixed fusion setting a default could be (convex
    min-max and z-score at alpha 0.1-0.9, RRF k 60), each against the better of the two inputs; and convex min-max
    with alpha chosen by cross-validation, the procedure `retrieval-lab sweep fusion` stands for."""
    from retrieval_lab.evaluate.crossval import cross_validate, query_folds

    results = Results(args.out)
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    for name in args.datasets:
        ev = Evaluator(name)
        folds = query_folds(ev.dataset.qrels, args.folds, args.seed)
        base = ev(bm25(0.9, 0.4))
        for model in args.dense:
            single = {"bm25": base, "dense": ev(dense(model))}
            best_input = max(single, key=lambda k: single[k]["ndcg_at_10"])
            rows = {label: ev(hybrid(model, method, norm, alpha)) for label, (method, norm, alpha) in DEFAULTS.items()}
            record = {"bm25": base["ndcg_at_10"], "dense": single["dense"]["ndcg_at_10"], "best_input": best_input,
                      "fixed": {label: {"ndcg_at_10": row["ndcg_at_10"],
                                        "vs_best_input": paired_vs(row, single[best_input])}
                                for label, row in rows.items()}}
            cv = cross_validate({k: v["per_query"] for k, v in rows.items() if k.startswith("convex minmax")}, folds)
            record["cv_alpha"] = cv_record(cv)
            record["cv_alpha"]["delta_vs_best_input"] = cv.held_out_mean - single[best_input]["ndcg_at_10"]
            record["uptime"] = os.getloadavg()
            results.put("fusion_default", name, model, record)
            log(name, model, "bm25", round(base["ndcg_at_10"], 4), "dense", round(single["dense"]["ndcg_at_10"], 4),
                {k: round(record["fixed"][k]["ndcg_at_10"], 4) for k in SHOWN_DEFAULTS},
                "cv alpha", round(cv.held_out_mean, 4), dict(cv.picks))


def robust_defaults(fd: dict) -> tuple[dict[str, float], dict[str, tuple[str, float]]]:
    """Each fixed setting's worst delta to the better input over every (dataset, dense model) case; and, leaving
    each dataset out, the setting with the best worst case on the others with its worst delta on the one left out
    (does a default chosen on three datasets hold on the fourth?)."""
    cases = [(dataset, model) for dataset, models in fd.items() for model in models]

    def worst(label, keep):
        return min(fd[d][m]["fixed"][label]["vs_best_input"]["delta"] for d, m in cases if keep(d))

    labels = list(DEFAULTS)
    overall = {label: worst(label, lambda d: True) for label in labels}
    held_out = {}
    for left in fd:
        pick = max(labels, key=lambda label: worst(label, lambda d: d != left))  # first of the maxima
        held_out[left] = (pick, worst(pick, lambda d: d == left))
    return overall, held_out


def family_of(name: str) -> str:
    """A candidate's family: its name without BM25's k1 and b, the fusion weight or weights."""
    name = re.sub(r"bm25\([^)]*\)", "bm25", name)
    name = re.sub(r" k1=\S+ b=\S+$", "", name)
    return re.sub(r" (\d\.\d+|\[[^]]*\])$", "", name)


def cmd_table(args) -> None:
    data = Results(args.out).data
    for dataset, rec in data.get("select", {}).items():
        cv, chosen = rec["cv"], rec["chosen"]
        print(f"\n### {dataset} ({rec['queries']} queries, {rec['folds']} folds, seed {rec['seed']}, "
              f"{len(rec['candidates'])} candidates)\n")
        print("| fold | picked on the other 4 folds | their mean | held-out nDCG@10 |\n|---:|---|---:|---:|")
        for i, f in enumerate(cv["folds"]):
            print(f"| {i} | {f['picked']} | {f['train_mean']:.4f} | {f['held_out_mean']:.4f} |")
        vs = chosen["vs_bm25"]
        print(f"\nHeld-out mean **{cv['held_out_mean']:.4f} ± {cv['held_out_sd']:.4f}** (sd over folds). Chosen: "
              f"`{chosen['name']}` (picked {cv['picks'][chosen['name']]} of {rec['folds']}); over all test queries "
              f"{chosen['test_ndcg_at_10']:.4f} (optimistic: the same queries chose it), BM25 "
              f"{chosen['bm25_ndcg_at_10']:.4f}, delta {vs['delta']:+.4f}, randomization p {vs['p']:.4g}.\n")
        families: dict[str, tuple[str, dict]] = {}
        for name, row in rec["candidates"].items():
            family = family_of(name)
            if family not in families or row["ndcg_at_10"] > families[family][1]["ndcg_at_10"]:
                families[family] = (name, row)
        print("Best of each family over all test queries (for orientation; optimistic):\n")
        print("| family | best member | test nDCG@10 | R@100 |\n|---|---|---:|---:|")
        for family, (name, row) in families.items():
            print(f"| {family} | {name} | {row['ndcg_at_10']:.4f} | {row['recall_at_100']:.4f} |")
    fd = data.get("fusion_default")
    if fd:
        print("\n### default fusion across datasets (test nDCG@10; delta to the better input, randomization p)\n")
        print("| dataset | dense | BM25 | dense | " + " | ".join(SHOWN_DEFAULTS)
              + " | min-max alpha by CV (held-out) |")
        print("|---|---|---:|---:|" + "---:|" * (len(SHOWN_DEFAULTS) + 1))
        for dataset, models in fd.items():
            for model, r in models.items():
                cells = []
                for label in SHOWN_DEFAULTS:
                    f = r["fixed"][label]
                    vs = f["vs_best_input"]
                    cells.append(f"{f['ndcg_at_10']:.4f} ({vs['delta']:+.4f}, p {vs['p']:.2g})")
                cv = r["cv_alpha"]
                cells.append(f"{cv['held_out_mean']:.4f} ({cv['delta_vs_best_input']:+.4f})")
                print(f"| {dataset} | {model} | {r['bm25']:.4f} | {r['dense']:.4f} | " + " | ".join(cells) + " |")
        overall, held_out = robust_defaults(fd)
        print("\nWorst delta to the better input over every case, per fixed setting:\n")
        print("| setting | worst delta | mean delta | cases below the better input |\n|---|---:|---:|---:|")
        for label, value in sorted(overall.items(), key=lambda kv: -kv[1]):
            deltas = [r["fixed"][label]["vs_best_input"]["delta"] for models in fd.values() for r in models.values()]
            print(f"| {label} | {value:+.4f} | {sum(deltas) / len(deltas):+.4f} | {sum(d < 0 for d in deltas)} |")
        print("\nLeave one dataset out: the setting with the best worst case on the other datasets, on the one "
              "left out:\n")
        print("| left out | setting chosen on the others | its worst delta there |\n|---|---|---:|")
        for left, (pick, value) in held_out.items():
            print(f"| {left} | {pick} | {value:+.4f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("select", help="cross-validate a dataset's grid and test the chosen pipeline against BM25")
    p.add_argument("--dataset", required=True, choices=sorted(GRIDS))
    p.add_argument("--only", nargs="+", help="candidates whose name contains one of these (plus BM25), e.g. to "
                                             "measure part of the grid first; stored under '<dataset> only=...'")
    p.add_argument("--rm3", action="store_true", help="add RM3 variants of the BM25 families (Cranfield); stored "
                                                      "under '<dataset> rm3'")
    p.set_defaults(func=cmd_select)
    p = sub.add_parser("compare", help="paired test of two candidates of a dataset's grid")
    p.add_argument("--dataset", required=True, choices=sorted(GRIDS))
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("fusion-default", help="fixed default fusions against the better input, per dataset")
    p.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus", "arguana", "cranfield"])
    p.add_argument("--dense", nargs="+", default=["minilm_l6", "wordllama"])
    p.set_defaults(func=cmd_fusion_default)
    p = sub.add_parser("table")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
