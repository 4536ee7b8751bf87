"""Reproduce the best pipeline of each dataset, fast-scifact and refit-scifact, from cold: train every model they need
into a fresh cache, seeded, then evaluate each `+experiments=<pipeline>` on its test split and compare its nDCG@10
with the figure recorded.

    nice -n 10 .venv/bin/python benchmarks/reproduce.py                        # all of them (make reproduce)
    ... benchmarks/reproduce.py --datasets scifact nfcorpus                    # make reproduce DATASETS="scifact nfcorpus"
    ... benchmarks/reproduce.py --pipelines fast-scifact                       # make reproduce PIPELINES=fast-scifact
    ... benchmarks/reproduce.py --plan                                         # the commands, nothing run
    ... benchmarks/reproduce.py --cache .cache/reproduce/cache-<stamp>         # resume into that cache
    ... benchmarks/reproduce.py --seeds 0 1 2                                  # make reproduce SEEDS="0 1 2"

The training commands are the `requires` entries of experiments/<pipeline>.yaml (retrieval_lab/training/recipes.py
reads them; a run with a model missing prints the same commands), run as subprocesses with RETRIEVAL_LAB_CACHE set
to the fresh cache and MLflow logging to a private store beside it. Each pipeline is then evaluated the way
`retrieval-lab run +experiments=<pipeline> cache.dir=<cache>` does (`compose_config` + `run_experiment`, in this
process, without tracking), and so is the lab's default BM25 (k1 0.9, b 0.4) on the same queries: the paired
randomization test of `retrieval-lab best` gives each pipeline's p against BM25. The cache is never the user's
shared one (~/.cache/retrieval-lab): default a new folder under --work. Results go to benchmarks/results/reproduce.json.

Seeds (`--seeds 0 1 2`): every training command runs once per seed, each seed's models into a cache of their own
(`<cache>/seed-<s>`, so the pipeline loads them under the names it knows), with each recipe's `seed=` shifted by the
seed (the recipes say seed=0, or seed=1 for a model trained from another: seed 0 runs them as written). A pipeline is
evaluated in each seed's cache and reported as the mean ± sd over the seeds, with the single-seed figure (the first
seed) beside it and the paired randomization test of the mean gain over BM25 and, for a pipeline with a reranker,
over its own first stage (`reranker=none`, trained with the same seed): retrieval_lab/evaluate/seeds.py. A pipeline
with no model to train is evaluated once.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in logs

from retrieval_lab.errors import LabError  # noqa: E402
from retrieval_lab.training import reproduce  # noqa: E402  (RECORDED read through it: a test swaps it)
from retrieval_lab.training.reproduce import (  # noqa: E402
    bm25_overrides, pipeline_overrides, pipelines_of, plan_lines, recipes_of, reranks, seed_cache, seeded)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "reproduce.json"
TOLERANCE = 0.005


def evaluate(overrides: list[str]) -> dict:
    """One pipeline on its test split, as `retrieval-lab run <overrides>` evaluates it (no tracking): nDCG@10,
    R@100, per-query nDCG@10, seconds."""
    from omegaconf import OmegaConf

    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment

    from retrieval_lab.pipeline.build import unused_config_groups

    cfg = compose_config([*overrides, "tracking.enabled=false"])
    t0 = time.perf_counter()
    outcome = run_experiment(cfg)
    ev = outcome.evaluation
    return {"ndcg_at_10": ev.means["ndcg_at_10"], "recall_at_100": ev.means.get("recall_at_100"),
            "queries": len(ev.query_ids), "seconds": time.perf_counter() - t0,
            "query_p50_ms": outcome.timings.get("query_p50_ms"),
            "embedders": embedders(OmegaConf.to_container(cfg, resolve=True), unused_config_groups(cfg)),
            "per_query": dict(zip(ev.query_ids, ev.per_query["ndcg_at_10"].tolist()))}


def embedders(node, skip=(), key=None) -> dict[str, str]:
    """model -> backend of every embedder a run loads (defaults move: the backend is part of what was measured)."""
    found = {}
    if isinstance(node, dict):
        if key == "embedder" and "model" in node:
            found[node["model"]] = node.get("backend")
        for k, v in node.items():
            if k not in skip:
                found.update(embedders(v, (), k))
    return found


def summary(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "per_query"}


def use_shared_datasets() -> None:
    """The datasets folder beside the checkout, as the Makefile picks it, unless RETRIEVAL_LAB_DATA is set."""
    shared = REPO.parent / "shared" / "datasets"
    if "RETRIEVAL_LAB_DATA" not in os.environ and (shared / "scifact").is_dir():
        os.environ["RETRIEVAL_LAB_DATA"] = str(shared)


def train_env(cache: Path, work: Path) -> dict[str, str]:
    return dict(os.environ, RETRIEVAL_LAB_CACHE=str(cache), MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")


def train(recipe, cache: Path, work: Path, seed: int = 0) -> dict:
    """Run one training command (the `retrieval-lab` of this interpreter); its output goes to <work>/logs/."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"train-{recipe.model}-seed{seed}.log"
    reused = bool(_training_json(recipe, cache))  # registered there before: the trainer reuses it
    argv = [sys.executable, "-m", "retrieval_lab", f"train-{recipe.kind}", *recipe.overrides]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, env=train_env(cache, work), cwd=REPO)
    seconds = time.perf_counter() - t0
    if code != 0:
        tail = log_path.read_text()[-3000:]
        raise SystemExit(f"training {recipe.model} failed (exit {code}); log {log_path}:\n{tail}")
    trained = _training_json(recipe, cache)
    return {"seconds": seconds, "train_seconds": trained.get("train_seconds"), "reused": reused,
            "final_loss": trained.get("final_loss"), "peak_rss_mb": trained.get("peak_rss_mb"),
            "command": recipe.command, "log": str(log_path)}


def _training_json(recipe, cache: Path) -> dict:
    from retrieval_lab.models.registry import lookup

    model = lookup(recipe.kind, recipe.model, cache)
    path = model.folder / "training.json" if model else None
    return json.loads(path.read_text()) if path and path.exists() else {}


def save(out: Path, key: str, value) -> None:
    data = json.loads(out.read_text()) if out.exists() else {}
    data[key] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out)


def table(rows: dict[str, dict], tolerance: float) -> str:
    """One line per pipeline: the figure over the seeds, the single-seed one beside it, the mean gains with their
    paired p (single-seed gain and p in brackets)."""
    from retrieval_lab.evaluate.seeds import gain_text, mean_sd

    lines = ["| pipeline | recorded | reproduced: mean ± sd over seeds | single seed | mean - recorded | within ±%g | "
             "first stage | gain over first stage: mean ± sd, p (single seed) | gain over BM25: mean, p (single "
             "seed) | train s per seed | eval s | total s | load avg (1/5/15 min) |" % tolerance,
             "|---|---:|---:|---:|---:|---|---:|---|---|---|---:|---:|---|"]
    for pipeline, row in rows.items():
        fig = row["ndcg_at_10"]
        trained = ", ".join(f"{sum(t['seconds'] for t in models.values()):.0f}" for models in row["training"].values()
                            if models) or "-"
        first = row.get("first_stage")
        over_first = (f"{gain_text(fig['over_first_stage'])} ({fig['over_first_stage']['single']:+.4f}, p "
                      f"{fig['over_first_stage']['single_p']:.3g})") if first else "-"
        bm25 = fig["over_bm25"]
        evals = sum(r["seconds"] for r in row["per_seed"].values())
        lines.append(
            f"| {pipeline} | {row['recorded']:.4f} | {mean_sd(fig)} | {fig['single']:.4f} (seed {fig['single_seed']}) "
            f"| {row['delta']:+.4f} | {'yes' if row['within_tolerance'] else 'NO'} | "
            f"{mean_sd(first) if first else '-'} | {over_first} | {bm25['mean']:+.4f}, p {bm25['p']:.3g} "
            f"({bm25['single']:+.4f}, p {bm25['single_p']:.3g}) | {trained} | {evals:.0f} | "
            f"{row['total_seconds']:.0f} | {' '.join(f'{x:.1f}' for x in row['load_average'])} |")
    return "\n".join(lines)


def reproduce_pipeline(pipeline: str, recipes, seeds, cache: Path, work: Path, trained: dict, bm25_of: dict,
                       tolerance: float) -> dict:
    """Train (once per model and seed) and evaluate one pipeline for each seed; its row of the results."""
    from retrieval_lab.evaluate.seeds import mean_sd, over_seeds

    t0 = time.perf_counter()
    dataset, recorded, where = reproduce.RECORDED[pipeline]
    with_reranker = bool(recipes) and reranks(pipeline)
    runs, first_stage, training = {}, {}, {}
    for seed in (seeds if recipes else seeds[:1]):  # nothing trained: one evaluation says it all
        here = seed_cache(cache, seed)
        here.mkdir(parents=True, exist_ok=True)
        training[seed] = {}
        for recipe in recipes:
            key = (recipe.model, seed)
            if key not in trained:
                command = seeded(recipe, seed)
                print(f"{pipeline}: seed {seed}: training {recipe.model}: {command.command}", flush=True)
                trained[key] = {**train(command, here, work, seed), "for": pipeline}
                done = "reused (trained there before)" if trained[key]["reused"] else "trained"
                print(f"{pipeline}: seed {seed}: {recipe.model} {done} in {trained[key]['seconds']:.0f} s", flush=True)
            training[seed][recipe.model] = trained[key]
        runs[seed] = evaluate(pipeline_overrides(pipeline, here))
        if with_reranker:
            first_stage[seed] = evaluate([*pipeline_overrides(pipeline, here), "reranker=none"])
        print(f"{pipeline}: seed {seed}: nDCG@10 {runs[seed]['ndcg_at_10']:.4f}"
              + (f" (first stage {first_stage[seed]['ndcg_at_10']:.4f})" if with_reranker else ""), flush=True)
    if dataset not in bm25_of:
        bm25_of[dataset] = evaluate(bm25_overrides(dataset, seed_cache(cache, seeds[0])))
    bm25 = bm25_of[dataset]
    per_query = {s: r["per_query"] for s, r in runs.items()}
    figure = over_seeds(per_query)
    figure["over_bm25"] = over_seeds(per_query, {s: bm25["per_query"] for s in runs})["gain"]
    row = {"dataset": dataset, "recorded": recorded, "recorded_in": where, "seeds": list(runs),
           "ndcg_at_10": figure, "per_seed": {s: summary(r) for s, r in runs.items()}, "bm25": summary(bm25),
           "delta": figure["mean"] - recorded, "within_tolerance": abs(figure["mean"] - recorded) <= tolerance,
           "training": training, "load_average": list(os.getloadavg()),
           "command": shlex.join(["retrieval-lab", "run", *pipeline_overrides(pipeline, seed_cache(cache, seeds[0]))])}
    if with_reranker:
        first = {s: r["per_query"] for s, r in first_stage.items()}
        row["first_stage"] = over_seeds(first)
        figure["over_first_stage"] = over_seeds(per_query, first)["gain"]
        row["per_seed_first_stage"] = {s: summary(r) for s, r in first_stage.items()}
    row["total_seconds"] = time.perf_counter() - t0
    print(f"{pipeline}: nDCG@10 {mean_sd(figure)} (single seed {figure['single']:.4f}; recorded {recorded}, "
          f"{row['delta']:+.4f}); BM25 {bm25['ndcg_at_10']:.4f}, mean gain {figure['over_bm25']['mean']:+.4f} "
          f"p {figure['over_bm25']['p']:.4g}", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(reproduce.DATASETS), choices=reproduce.DATASETS,
                        help="reproduce the pipelines on these datasets (default: all)")
    parser.add_argument("--pipelines", nargs="+", choices=list(reproduce.RECORDED),
                        help="reproduce these pipelines only (instead of --datasets)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="train every model once per seed (each recipe's seed= shifted by it), each seed into "
                             "<cache>/seed-<s>; figures are the mean ± sd over the seeds (default: 0)")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "reproduce",
                        help="folder for the fresh cache, the MLflow store and the training logs")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache to train and evaluate in (default: a new <work>/cache-<UTC time>); an existing "
                             "one resumes: models already trained there are reused")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plan", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)

    work = args.work.expanduser().resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    cache = (args.cache or work / f"cache-{stamp}").expanduser().resolve()
    try:
        reproduce.check_seeds(args.seeds)
        reproduce.check_cache(cache)
    except LabError as exc:
        parser.error(str(exc))
    pipelines = args.pipelines or pipelines_of(args.datasets)
    if args.plan:
        print("\n".join(plan_lines(pipelines, cache, work, args.seeds)))
        return 0

    from_cold = not cache.exists() or not any(cache.iterdir())
    cache.mkdir(parents=True, exist_ok=True)
    use_shared_datasets()
    print(f"cache {cache} ({'empty' if from_cold else 'existing: trained models are reused'}), seeds "
          f"{' '.join(map(str, args.seeds))}; logs and MLflow store under {work}", flush=True)
    start = time.perf_counter()
    rows, trained = {}, {}
    bm25_of: dict[str, dict] = {}  # dataset -> its BM25 baseline, evaluated once
    for pipeline, recipes in recipes_of(pipelines).items():
        rows[pipeline] = reproduce_pipeline(pipeline, recipes, args.seeds, cache, work, trained, bm25_of,
                                            args.tolerance)
        save(args.out, pipeline, {**rows[pipeline], "cache": str(cache), "from_cold": from_cold, "finished": stamp})
    total = time.perf_counter() - start
    print()
    print(table(rows, args.tolerance))
    print(f"\ntotal {total:.0f} s from {'an empty' if from_cold else 'an existing'} cache; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(r["within_tolerance"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
