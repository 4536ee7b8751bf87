"""A reranker fast enough to use: the setting (backend, max_length, depth, interpolate) of a cross-encoder over the
best SciFact first stage chosen under a latency budget, from the cost and quality rows benchmarks/rerank_cost.py
measures (its results file: `cost` rows "backend max_length depth", `quality` rows "backend max_length depth
interpolate split" and "first_stage split"), and the overrides of `+experiments=best-scifact` each setting runs.

`args` below is anything with `.reranker` (a registered cross-encoder to use instead of best-scifact's own, or None)
and `.first_stage` (overrides of best-scifact's first stage), such as the script's parsed arguments.
"""
from __future__ import annotations

from retrieval_lab.evaluate.compare import paired_vs

PIPELINE = ["+experiments=best-scifact"]


def pipeline(args) -> list[str]:
    """best-scifact, with another registered cross-encoder in place of its own when --reranker names one, and its
    first stage changed by --first-stage."""
    out = [*PIPELINE, *args.first_stage]
    if not args.reranker:
        return out
    return [*out, f"reranker.model={args.reranker}"]


def first_stage(args) -> list[str]:
    return [*PIPELINE, *args.first_stage, "reranker.name=none"]


def setting_overrides(args, backend: str, max_length: int, depth: int, interpolate: float) -> list[str]:
    return [*pipeline(args), f"reranker.backend={backend}", f"reranker.max_length={max_length}",
            f"reranker.depth={depth}", f"reranker.interpolate={interpolate}"]


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
