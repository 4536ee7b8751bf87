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
from reproduce import paired_vs  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "rerank_cost.json"
PIPELINE = ["+experiments=best-scifact"]
BACKENDS = ("torch", "onnx", "onnx_int8")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pipeline(args) -> list[str]:
    """best-scifact, with another registered cross-encoder in place of its own when --reranker names one, and its
    first stage changed by --first-stage."""
    out = [*PIPELINE, *args.first_stage]
    if not args.reranker:
        return out
    return [*out, f"reranker.name={args.reranker}", f"reranker.model={args.reranker}"]


def first_stage(args) -> list[str]:
    return [*PIPELINE, *args.first_stage, "reranker.type=none", "reranker.name=none"]


def setting_overrides(args, backend: str, max_length: int, depth: int, interpolate: float) -> list[str]:
    return [*pipeline(args), f"reranker.backend={backend}", f"reranker.max_length={max_length}",
            f"reranker.depth={depth}", f"reranker.interpolate={interpolate}"]


def measure_cost(args, results: Results) -> None:
    """Per-query rerank and search latency of every backend x max_length x depth, score cache off."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import dataset_from_config
    from retrieval_lab.pipeline import Retriever
    from retrieval_lab.pipeline.build import cache_for
    from retrieval_lab.pipeline.steps import RerankStep
    from retrieval_lab.rerank import make_scorer, reranker_config

    cfg = compose_config([*pipeline(args), "tracking.enabled=false"])
    dataset = dataset_from_config(cfg.dataset)
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


def graded_settings(quality: dict) -> dict[str, float]:
    """Selection-split nDCG@10 of each "backend max_length depth interpolate" setting that was also scored on test
    (an interrupted run may have scored selection only)."""
    return {key.removesuffix(" selection"): row["ndcg_at_10"] for key, row in quality.items()
            if key.endswith(" selection") and not key.startswith("first_stage")
            and key.replace(" selection", " test") in quality}


def choose(data: dict, budget_ms: float) -> dict:
    """The best selection-split setting whose rerank p50 fits the budget (ties: the cheaper), and its test figure
    beside the first stage with a paired randomization test."""
    quality, cost = data["quality"], data["cost"]
    fits = []
    for setting, selection in graded_settings(quality).items():
        timing = cost.get(setting.rsplit(" ", 1)[0])  # "backend max_length depth"
        if timing and timing["rerank_p50_ms"] <= budget_ms:
            fits.append((selection, -timing["rerank_p50_ms"], setting))
    if not fits:
        return {"budget_ms": budget_ms, "setting": None}
    _, _, setting = max(fits)
    test, first = quality[f"{setting} test"], quality["first_stage test"]
    backend, max_length, depth, _ = setting.split()
    return {"budget_ms": budget_ms, "setting": setting,
            "selection_ndcg_at_10": quality[f"{setting} selection"]["ndcg_at_10"],
            "test_ndcg_at_10": test["ndcg_at_10"], "first_stage_test_ndcg_at_10": first["ndcg_at_10"],
            "vs_first_stage": paired_vs(test, first), "cost": cost[f"{backend} {max_length} {depth}"]}


def table(data: dict, budget_ms: float) -> str:
    lines = ["| backend | max_length | depth | rerank p50 ms | p95 ms | search p50 ms | test nDCG@10 (best "
             "interpolate on selection) | load |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    quality = data.get("quality", {})
    for key, row in data.get("cost", {}).items():
        backend, max_length, depth = key.split()
        graded = "onnx" if backend == "torch" else backend  # torch's scores are onnx's
        picks = [(selection, setting.split()[3]) for setting, selection in graded_settings(quality).items()
                 if setting.startswith(f"{graded} {max_length} {depth} ")]
        score = ""
        if picks:
            w = max(picks)[1]
            score = f"{quality[f'{graded} {max_length} {depth} {w} test']['ndcg_at_10']:.4f} (w {w})"
        lines.append(f"| {backend} | {max_length} | {depth} | {row['rerank_p50_ms']:.0f} | "
                     f"{row['rerank_p95_ms']:.0f} | {row['search_p50_ms']:.0f} | {score} | {row['load_average']} |")
    if "first_stage test" in quality:
        lines.append(f"\nFirst stage alone: test nDCG@10 {quality['first_stage test']['ndcg_at_10']:.4f}, selection "
                     f"{quality['first_stage selection']['ndcg_at_10']:.4f}.")
    if quality and data.get("cost"):
        chosen = choose(data, budget_ms)
        if chosen["setting"]:
            vs = chosen["vs_first_stage"]
            lines.append(f"Chosen on the selection split within {budget_ms:g} ms p50: `{chosen['setting']}` "
                         f"(backend, max_length, depth, interpolate): test nDCG@10 {chosen['test_ndcg_at_10']:.4f}, "
                         f"{vs['delta']:+.4f} over the first stage (randomization p {vs['p']:.3g}), rerank p50 "
                         f"{chosen['cost']['rerank_p50_ms']:.0f} ms.")
        else:
            lines.append(f"No measured setting fits {budget_ms:g} ms p50.")
    return "\n".join(lines)


def paired_rows(a: str, b: str) -> dict:
    """`paired_vs` of two quality rows named 'file:row', e.g. the same setting over two first stages."""
    rows = []
    for spec in (a, b):
        path, _, key = spec.partition(":")
        quality = json.loads(Path(path).read_text()).get("quality", {})
        if key not in quality:
            raise SystemExit(f"{path}: no quality row '{key}' (rows: {', '.join(quality) or 'none'})")
        rows.append(quality[key])
    return {"a": a, "b": b, "a_ndcg_at_10": rows[0]["ndcg_at_10"], "b_ndcg_at_10": rows[1]["ndcg_at_10"],
            **paired_vs(*rows)}


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
        print(json.dumps(paired_rows(*args.paired)))
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
