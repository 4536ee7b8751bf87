"""A reranker fast enough to use: the depth x cost curve of the SciFact cross-encoder (`ce-scifact-bce`, or another
registered one with `--reranker`) over the best SciFact first stage, by backend and max_length, and the setting
chosen under a latency budget.

    RETRIEVAL_LAB_DATA=<datasets> nice -n 10 .venv/bin/python benchmarks/rerank_cost.py \
        [--budget-ms 300] [--timing-queries 30] [--max-lengths 128 192 256] [--depths 5 10 20 30]
    .venv/bin/python benchmarks/rerank_cost.py --table       # markdown from benchmarks/results/rerank_cost.json
    .venv/bin/python benchmarks/rerank_cost.py --paired "<file>:<row>" "<file>:<row>"   # paired test of two rows

Needs the two models experiments/best-scifact.yaml lists under `requires` (its commands train them). Steps:
1. **Cost.** The exported pipeline (`+experiments=best-scifact`) is built once; for every backend (torch, onnx,
   onnx_int8) x max_length x depth, the first `--timing-queries` test queries are searched one at a time as a live
   search does, with the score cache off: rerank ms per query (tokenization included) and end-to-end search ms,
   p50 and p95. Each backend's scores of the same pairs are compared with torch's.
2. **Quality.** nDCG@10 of every onnx / onnx_int8 x max_length x depth x interpolate setting on the selection split
   (the 152 training queries `holdout=0.2 seed=0` keeps out of training, on which every other SciFact setting was
   chosen) and on test, through `run_experiment` (onnx gives torch's scores, so torch is not evaluated again).
3. **Choice.** On the selection split, the best setting whose rerank p50 fits `--budget-ms`; reported once on test
   beside the first stage alone, with a paired randomization test.

Results go to benchmarks/results/rerank_cost.json with `uptime` load averages (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from itertools import product
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in logs

from hybrid import Evaluator, Results  # noqa: E402  (benchmarks/ is the script's folder)

from retrieval_lab.errors import DataError  # noqa: E402
from retrieval_lab.evaluate.compare import paired_rows  # noqa: E402
from retrieval_lab.rerank.budget import first_stage, pipeline, setting_overrides, table  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "rerank_cost.json"
BACKENDS = ("torch", "onnx", "onnx_int8")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure_cost(args, results: Results) -> None:
    """Per-query rerank and search latency of every backend x max_length x depth, score cache off."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.pipeline import Retriever
    from retrieval_lab.pipeline.build import cache_for
    from retrieval_lab.pipeline.steps import RerankStep
    from retrieval_lab.rerank import make_scorer, reranker_config

    cfg = compose_config([*pipeline(args), "tracking.enabled=false"])
    dataset = load_dataset(cfg.dataset)
    retriever = Retriever(cfg, dataset.corpus)
    base = reranker_config(cfg.reranker)
    cache_root = cache_for(retriever.settings).root
    texts = dataset.queries.texts[:args.timing_queries]
    candidates = {}  # the pairs of the first 10 queries at depth 20: every backend's scores compared with torch's
    for backend, max_length in product(BACKENDS, args.max_lengths):
        config = replace(base, backend=backend, max_length=max_length)
        scorer = make_scorer(config, cache_root, cache_enabled=False)
        step = RerankStep(config, scorer, retriever.chain.step("rerank").reads)
        retriever.chain.steps = [step if s.label == "rerank" else s for s in retriever.chain.steps]
        retriever.trace(texts[0])  # load the model (and export it once) outside the timings
        for depth in args.cost_depths:
            step.config = replace(config, depth=depth)
            rerank_ms, search_ms = [], []
            for text in texts:
                t0 = time.perf_counter()
                trace = retriever.trace(text)
                search_ms.append(1000 * (time.perf_counter() - t0))
                rerank_ms.append(trace.costs["rerank_wall_ms_per_query"])
            row = {"rerank_p50_ms": float(np.median(rerank_ms)), "rerank_p95_ms": float(np.percentile(rerank_ms, 95)),
                   "search_p50_ms": float(np.median(search_ms)), "search_p95_ms": float(np.percentile(search_ms, 95)),
                   "queries": len(texts), "load_average": load_average()}
            results.put("cost", f"{backend} {max_length} {depth}", row)
            print("cost", backend, max_length, depth, json.dumps(row), flush=True)
        if not candidates:
            text_of = dict(zip(retriever.passages.ids, retriever.passages.texts))
            for text in dataset.queries.texts[:10]:
                hits = retriever.trace(text).runs["fusion"]
                candidates[text] = [(text, text_of[pid]) for pid, _ in next(iter(hits.values()))[:20]]
        pairs = [pair for group in candidates.values() for pair in group]
        scores = np.concatenate([scorer.score(group)[0] for group in candidates.values()])
        results.put("agreement", f"{backend} {max_length}", scores.tolist())
        reference = results.data["agreement"].get(f"torch {max_length}")
        if reference is not None:
            print("max |score - torch|", backend, max_length, float(np.abs(scores - np.array(reference)).max()),
                  f"({len(pairs)} pairs)", flush=True)


def measure_quality(args, results: Results) -> None:
    """nDCG@10 of every onnx / onnx_int8 setting on the selection split and on test (score cache on: a shallower
    depth or another interpolation reuses the pairs already scored)."""
    evaluate = Evaluator("scifact", "heldout")
    for split in ("selection", "test"):
        if f"first_stage {split}" not in results.data.get("quality", {}):
            results.put("quality", f"first_stage {split}", evaluate(first_stage(args), split, per_query=True))
    for backend, max_length in product(args.backends, args.max_lengths):
        for depth, w in product(args.depths, args.interpolate):  # in the order given: the cheap ones first
            for split in ("selection", "test"):
                key = f"{backend} {max_length} {depth} {w} {split}"
                if key in results.data.get("quality", {}):
                    continue
                row = evaluate(setting_overrides(args, backend, max_length, depth, w), split, per_query=True)
                results.put("quality", key, row)
                print("quality", key, f"{row['ndcg_at_10']:.4f}", f"{row['seconds']:.0f} s", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--reranker", help="a registered cross-encoder to measure instead of best-scifact's own "
                                           "(ce-scifact-bce), e.g. a distilled one; use its own --out")
    parser.add_argument("--first-stage", nargs="*", default=[], metavar="OVERRIDE",
                        help="overrides of best-scifact's first stage, e.g. retriever.depth=1000 (use a new --out)")
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--timing-queries", type=int, default=30)
    parser.add_argument("--max-lengths", nargs="+", type=int, default=[128, 192, 256])
    parser.add_argument("--cost-depths", nargs="+", type=int, default=[5, 10, 20, 30, 50])
    parser.add_argument("--depths", nargs="+", type=int, default=[5, 10, 20, 30], help="depths evaluated for quality")
    parser.add_argument("--interpolate", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--backends", nargs="+", default=["onnx_int8", "onnx"], choices=["onnx_int8", "onnx"],
                        help="backends evaluated for quality (onnx gives torch's scores)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["cost", "quality"])
    parser.add_argument("--table", action="store_true", help="print the tables from --out and stop")
    parser.add_argument("--paired", nargs=2, metavar="FILE:ROW",
                        help="paired randomization test of two measured rows, each 'results file:quality row' "
                             "(e.g. 'benchmarks/results/rerank_cost.json:first_stage test'), and stop")
    args = parser.parse_args(argv)
    if args.paired:
        try:
            print(json.dumps(paired_rows(*args.paired)))
        except DataError as exc:
            raise SystemExit(str(exc)) from None
        return 0
    results = Results(args.out)
    if not args.table:
        if "cost" not in args.skip:
            measure_cost(args, results)
        if "quality" not in args.skip:
            measure_quality(args, results)
    print(table(results.data, args.budget_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
