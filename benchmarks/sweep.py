"""Sweep overhead, resume and parallelism on a 12-configuration SciFact sweep, measured side by side in one run.

Grid (default): retriever=hybrid (BM25 + dense, convex min-max) x chunker=none,fixed_tokens x
embedder=wordllama,minilm_l3 x retriever.fusion.alpha=0.3,0.5,0.7 = 12 configurations.

Four measurements, each from its own empty cache and tracking store, one after the other:
1. unique stage costs: every configuration evaluated in one Python process with `pipeline.run_experiment`, no
   Hydra, no MLflow, dataset loaded once. With the content-addressed cache each unique stage (passages per
   chunker, BM25 and dense runs per chunker x embedder, fusion + evaluation per configuration) is computed once,
   so this time is the sum of the sweep's unique stage costs;
2. first run: `retrieval-lab sweep` (sequential launcher), wall time of the command;
3. identical re-run of 2 on the same store and cache: every configuration is resumed;
4. the same sweep as 2 with `hydra/launcher=joblib hydra.launcher.n_jobs=2` (cold cache, fresh store).

    .venv/bin/python benchmarks/sweep.py [--embedders wordllama,minilm_l3] [--out benchmarks/results/sweep.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "retrieval_lab.cli"]


def grid(embedders: list[str]) -> tuple[list[str], list[list[str]]]:
    sweep_args = ["retriever=hybrid", "chunker=none,fixed_tokens", f"embedder={','.join(embedders)}",
                  "retriever.fusion.alpha=0.3,0.5,0.7", "tracking.experiment=bench-sweep"]
    configs = [["retriever=hybrid", f"chunker={c}", f"embedder={e}", f"retriever.fusion.alpha={a}"]
               for c in ("none", "fixed_tokens") for e in embedders for a in ("0.3", "0.5", "0.7")]
    return sweep_args, configs


UNIQUE = r"""
import json, sys, time
t0 = time.perf_counter()
from retrieval_lab.config import compose_config
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.data import load_dataset
configs = json.loads(sys.argv[1])
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
dataset = load_dataset(compose_config(configs[0]).dataset)
t_data = time.perf_counter() - t0
per = []
for overrides in configs:
    t1 = time.perf_counter()
    out = run_experiment(compose_config(overrides), dataset=dataset)
    per.append([overrides, time.perf_counter() - t1, out.evaluation.means["ndcg_at_10"]])
print(json.dumps({"import_s": t_import, "dataset_s": t_data, "configs": per,
                  "total_s": t_data + sum(p[1] for p in per)}))
"""


def run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", default="wordllama,minilm_l3")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sweep.json"))
    parser.add_argument("--skip-joblib", action="store_true")
    parser.add_argument("--skip-unique", action="store_true",
                        help="skip the in-process measurement; the first run's own children still give the "
                             "sum of their pipeline seconds")
    parser.add_argument("--abba", action="store_true",
                        help="measure first run and unique costs again in reverse order (B A) and average: the "
                             "machine's load drifts over the minutes each measurement takes")
    args = parser.parse_args()
    embedders = args.embedders.split(",")
    sweep_args, configs = grid(embedders)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    base_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                # resume must not depend on edits others make to the checkout while this runs
                "RETRIEVAL_LAB_CODE_VERSION": f"bench-{commit}"}
    results: dict = {"configs": len(configs), "grid": sweep_args, "cpus": os.cpu_count(),
                     "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)

        def env_for(name: str) -> dict:
            (tmp / name).mkdir(exist_ok=True)
            return {**base_env, "RETRIEVAL_LAB_CACHE": str(tmp / name / "cache"),
                    "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / name / 'mlflow.db'}"}

        if not args.skip_unique:
            print(f"1/4 unique stage costs ({len(configs)} configs in one process, cold cache) ...", flush=True)
            wall, proc = run([sys.executable, "-c", UNIQUE, json.dumps(configs)], env_for("unique"), tmp)
            unique = json.loads(proc.stdout.strip().splitlines()[-1])
            results["unique"] = unique
            results["unique_process_wall_s"] = wall
            print(f"    {unique['total_s']:.1f} s of stage work ({wall:.1f} s with the process start)", flush=True)

        env = env_for("sequential")
        sweep = [*CLI, "sweep", *sweep_args, f"hydra.sweep.dir={tmp / 'sequential' / 'multirun'}"]
        print("2/4 first run, sequential launcher ...", flush=True)
        results["first_s"], proc = run(sweep, env, tmp)
        print(f"    {results['first_s']:.1f} s", flush=True)
        # Same run, no load drift: each child logs the seconds its pipeline took (cold stages computed once).
        from mlflow.tracking import MlflowClient

        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        exp = client.get_experiment_by_name("bench-sweep")
        children = client.search_runs([exp.experiment_id], "tags.role = 'config'", max_results=100)
        results["first_pipeline_s"] = sum(c.data.metrics.get("pipeline_seconds", 0.0) for c in children)
        print(f"    of which the configurations' pipelines: {results['first_pipeline_s']:.1f} s", flush=True)
        print("3/4 identical re-run (resume) ...", flush=True)
        results["rerun_s"], proc = run(sweep, env, tmp)
        assert f"{len(configs)} resumed" in proc.stdout, proc.stdout[-2000:]
        print(f"    {results['rerun_s']:.1f} s", flush=True)
        if not args.skip_joblib:
            env = env_for("joblib")
            print("4/4 joblib n_jobs=2, cold cache ...", flush=True)
            results["joblib_s"], _ = run([*CLI, "sweep", *sweep_args, "hydra/launcher=joblib",
                                          "hydra.launcher.n_jobs=2",
                                          f"hydra.sweep.dir={tmp / 'joblib' / 'multirun'}"], env, tmp)
            print(f"    {results['joblib_s']:.1f} s", flush=True)
            if args.abba:
                env = env_for("sequential2")
                print("5/6 first run again (reverse order), cold cache ...", flush=True)
                second_first, _ = run([*CLI, "sweep", *sweep_args,
                                       f"hydra.sweep.dir={tmp / 'sequential2' / 'multirun'}"], env, tmp)
                print(f"    {second_first:.1f} s", flush=True)
                print("6/6 unique stage costs again, cold cache ...", flush=True)
                _, proc = run([sys.executable, "-c", UNIQUE, json.dumps(configs)], env_for("unique2"), tmp)
                second_unique = json.loads(proc.stdout.strip().splitlines()[-1])["total_s"]
                print(f"    {second_unique:.1f} s", flush=True)
                results["first_runs_s"] = [results["first_s"], second_first]
                results["unique_runs_s"] = [results["unique"]["total_s"], second_unique]
    results["load_after"] = os.getloadavg()
    results["first_over_own_pipeline"] = results["first_s"] / results["first_pipeline_s"]
    if "unique" not in results:
        results["unique"] = {"total_s": results["first_pipeline_s"], "configs": []}
    u = results["unique"]["total_s"]
    if "unique_runs_s" in results:
        u = sum(results["unique_runs_s"]) / 2
        results["unique"]["total_s"] = u
        results["first_s"] = sum(results["first_runs_s"]) / 2
    results["first_over_unique"] = results["first_s"] / u
    results["rerun_over_first"] = results["rerun_s"] / results["first_s"]
    if "joblib_s" in results:
        results["speedup_joblib2"] = results["first_s"] / results["joblib_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    best = max(results["unique"]["configs"], key=lambda p: p[2]) if results["unique"]["configs"] else None
    print("\n| measurement | seconds | ratio | target |\n|---|---:|---:|---|")
    runs = " (mean of A B B A)" if "unique_runs_s" in results else ""
    print(f"| unique stage costs (in-process, cold cache){runs} | {u:.1f} | 1.00 | - |")
    print(f"| first run (`retrieval-lab sweep`, sequential){runs} | {results['first_s']:.1f} | "
          f"{results['first_over_unique']:.2f}x unique | <= 1.2x |")
    print(f"| first run / its own configurations' pipeline seconds | {results['first_s']:.1f} / "
          f"{results['first_pipeline_s']:.1f} | {results['first_over_own_pipeline']:.2f}x | <= 1.2x |")
    print(f"| identical re-run (all resumed) | {results['rerun_s']:.1f} | "
          f"{results['rerun_over_first'] * 100:.1f}% of first | <= 5% |")
    if "joblib_s" in results:
        print(f"| first run, joblib n_jobs=2 | {results['joblib_s']:.1f} | "
              f"{results['speedup_joblib2']:.2f}x speed-up | - |")
    if best:
        print(f"\nbest: {' '.join(best[0])} nDCG@10 {best[2]:.4f}")
    print(f"load average before/after {results['load_before'][0]:.1f}/{results['load_after'][0]:.1f}")


if __name__ == "__main__":
    main()
