"""How far a dataset's best pipeline carries to another domain: each `experiments/best-<dataset>.yaml` run as it is
exported on each of the four datasets (`retrieval-lab run +experiments=best-<from> dataset=<on>`), beside the lab's
default BM25 on the same test queries (paired randomization test, as `retrieval-lab best`).

    nice -n 10 .venv/bin/python benchmarks/transfer.py                          # every row whose models are trained
    ... benchmarks/transfer.py --pipelines arguana cranfield                    # some rows
    ... benchmarks/transfer.py --table                                          # the table from the JSON
    ... benchmarks/transfer.py --override embedder.backend=torch               # more overrides for every run

A pipeline that loads models trained here (SciFact, NFCorpus) runs only where they are registered in the cache
(`--cache`, default $RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab); otherwise its row says which training it needs.
Cells already in benchmarks/results/transfer.json are kept unless --redo.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from reproduce import evaluate, save, summary, use_shared_datasets

from retrieval_lab.evaluate.compare import paired_vs
from retrieval_lab.training.reproduce import DATASETS, best_overrides, bm25_overrides

OUT = Path(__file__).resolve().parent / "results" / "transfer.json"


def needs_training(source: str, cache: Path | None) -> list[str]:
    """The models of best-<source> not trained in `cache` (none for zoo-only pipelines)."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline.build import unused_config_groups
    from retrieval_lab.training.recipes import missing

    cfg = compose_config(best_overrides(source, cache))
    return [r.model for r in missing(cfg, cache, unused_config_groups(cfg))]


def cell(data: dict, source: str, target: str) -> str:
    row = data.get(source, {})
    if "needs" in row:
        return "-"
    c = row.get(target)
    if c is None:
        return "not run"
    return f"{c['ndcg_at_10']:.4f} ({c['vs_bm25']['delta']:+.4f}, p {c['vs_bm25']['p']:.2g})"


def table(data: dict) -> str:
    targets = [d for d in DATASETS if d in data.get("bm25", {})]
    lines = ["| pipeline \\ evaluated on | " + " | ".join(targets) + " |", "|---|" + "---:|" * len(targets),
             "| BM25 (k1 0.9, b 0.4) | " + " | ".join(f"{data['bm25'][t]['ndcg_at_10']:.4f}" for t in targets) + " |"]
    notes = []
    for source in DATASETS:
        if source not in data:
            continue
        lines.append(f"| best-{source} | " + " | ".join(cell(data, source, t) for t in targets) + " |")
        if "needs" in data[source]:
            notes.append(f"best-{source}: needs: train {', '.join(data[source]['needs'])} (the `requires` commands "
                         f"of experiments/best-{source}.yaml, or `make reproduce DATASETS={source}`)")
    return "\n".join(lines + [""] + notes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", nargs="+", default=list(DATASETS), choices=DATASETS,
                        help="the best-<dataset> pipelines to transfer (rows)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS,
                        help="the datasets they are evaluated on (columns)")
    parser.add_argument("--cache", type=Path, default=None, help="where trained models are registered")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--override", nargs="*", default=[],
                        help="more overrides for every run, e.g. embedder.backend=torch (vectors already cached)")
    parser.add_argument("--redo", action="store_true")
    parser.add_argument("--table", action="store_true", help="print the table from --out and exit")
    args = parser.parse_args(argv)
    data = lambda: json.loads(args.out.read_text()) if args.out.exists() else {}  # noqa: E731
    if args.table:
        print(table(data()))
        return 0

    use_shared_datasets()
    cache = args.cache.expanduser().resolve() if args.cache else None
    baselines = {}
    for target in args.datasets:
        if not args.redo and target in data().get("bm25", {}):
            continue
        baselines[target] = evaluate([*bm25_overrides(target, cache), *args.override])
        save(args.out, "bm25", {**data().get("bm25", {}), target: summary(baselines[target])})
    for source in args.pipelines:
        needs = needs_training(source, cache)
        if needs:
            print(f"best-{source}: skipped, needs: train {', '.join(needs)}", flush=True)
            save(args.out, source, {"needs": needs})
            continue
        for target in args.datasets:
            row = {k: v for k, v in data().get(source, {}).items() if k != "needs"}
            if target in row and not args.redo:
                continue
            if target not in baselines:  # per-query values are not kept in the JSON
                baselines[target] = evaluate([*bm25_overrides(target, cache), *args.override])
            t0 = time.perf_counter()
            result = evaluate([*best_overrides(source, cache, on=target), *args.override])
            row[target] = {**summary(result), "vs_bm25": paired_vs(result, baselines[target]),
                           "overrides": args.override,
                           "wall_seconds": time.perf_counter() - t0, "load_average": list(os.getloadavg())}
            save(args.out, source, row)
            print(f"best-{source} on {target}: nDCG@10 {result['ndcg_at_10']:.4f} (BM25 "
                  f"{baselines[target]['ndcg_at_10']:.4f}), {row[target]['wall_seconds']:.0f} s", flush=True)
    print()
    print(table(data()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
