"""Pooled judging on SciFact: pool size against depth and number of configurations, and what re-scoring a
10-configuration experiment with new judgements costs against running it again, measured side by side in one run.

The experiment (10 cheap configurations, 4 sweeps into one experiment, all 300 test queries, its own cache):
- BM25 k1 0.9/1.5 x b 0.4/0.75 (4);
- WordLlama dense (1) and its convex hybrid with BM25 at alpha 0.3/0.5/0.7 (3);
- BM25 over 128-token chunks returning the chunk, or the whole document (2).
Then, for the first --questions test queries (their text only, as a user's questions):
1. pooling: every configuration's chain on the questions (`retrieval-lab judge`'s pooling, in process), top 20
   units kept; pool sizes for depths 5, 10, 20 and the first 1..10 configurations (pool order);
2. judging: every pair of the depth-10 pool judged through the judging API as SciFact's qrels say (a stand-in for
   a person; what is timed is the store: one fsync'd line and the judged set rewritten per judgement);
3. re-score: the 4 sweeps again with `dataset.questions=<judged set>` on the same cache, wall time, and the cache
   entries of embeddings, passages and first-stage runs counted before and after (none may be added);
4. run again: the same 4 sweeps on the judged set from an empty cache (chunking, encoding, indexing, search).

    .venv/bin/python benchmarks/judging.py [--questions 50] [--work DIR] [--out benchmarks/results/judging.json]
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
EXPERIMENT = "bench-judging"
SWEEPS = [
    ["retriever=bm25", "retriever.k1=0.9,1.5", "retriever.b=0.4,0.75"],
    ["+pipeline=dense_wordllama"],
    ["+pipeline=hybrid_wordllama", "retriever.fusion.alpha=0.3,0.5,0.7"],
    ["retriever=bm25", "chunker=fixed_tokens", "unit=chunk,document"],
]
DEPTHS = (5, 10, 20)
STAGES = ("passages", "embeddings", "step_runs")


def run_sweeps(extra: list[str], experiment: str, env: dict, work: Path) -> float:
    """The 4 sweeps one after the other; their total wall time."""
    t0 = time.perf_counter()
    for n, args in enumerate(SWEEPS):
        proc = subprocess.run([*CLI, "sweep", "dataset=scifact", *args, *extra, f"tracking.experiment={experiment}",
                               f"hydra.sweep.dir={work / 'multirun' / experiment / str(n)}"],
                              capture_output=True, text=True, env=env, cwd=work)
        if proc.returncode != 0:
            raise SystemExit(f"sweep {args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "", flush=True)
    return time.perf_counter() - t0


def first_stage_hits(metrics: dict) -> dict[str, float]:
    """`<label>_cache_hit` of each first stage (those log `<label>_index_seconds`), e.g. bm25 and dense; a flat
    index's `dense_index_cache_hit` is not one (flat indexes are never cache entries)."""
    return {k[:-len("_cache_hit")]: v for k, v in sorted(metrics.items())
            if k.endswith("_cache_hit") and f"{k[:-len('_cache_hit')]}_index_seconds" in metrics}


def cache_counts(cache: Path) -> dict[str, int]:
    from retrieval_lab.cache import Cache

    return {stage: len(Cache(cache).entries(stage)) for stage in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=50, help="SciFact test queries used as questions")
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "judging.json"))
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-judging-"))
    work.mkdir(parents=True, exist_ok=True)
    warm, cold = work / "cache", work / "cache-cold"
    data = Path(os.environ.get("RETRIEVAL_LAB_DATA") or REPO.parent / "shared" / "datasets")
    env = {**os.environ, "RETRIEVAL_LAB_DATA": str(data), "RETRIEVAL_LAB_CACHE": str(warm),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    os.environ.update(env)  # the in-process pooling uses the same store and cache

    from mlflow.tracking import MlflowClient

    from retrieval_lab.commands.judge import experiment_configurations
    from retrieval_lab.judging.pool import open_pool, pool_items, pooled_runs
    from retrieval_lab.judging.server import JudgingApp
    from retrieval_lab.judging.store import JudgementStore

    results: dict = {"questions": args.questions, "load_before": os.getloadavg()}
    print(f"experiment: 10 configurations on SciFact (300 queries), cache {warm}", flush=True)
    results["experiment_seconds"] = run_sweeps([], EXPERIMENT, env, work)

    queries = [json.loads(line) for line in open(data / "scifact" / "queries.jsonl", encoding="utf-8")]
    qrels: dict[str, dict[str, int]] = {}
    for line in open(data / "scifact" / "qrels" / "test.tsv", encoding="utf-8").readlines()[1:]:
        q, d, s = line.split()
        qrels.setdefault(q, {})[d] = int(s)
    chosen = [q for q in queries if q["_id"] in qrels][:args.questions]
    questions = work / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": q["_id"], "question": q["text"]}) + "\n" for q in chosen))

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    configurations = experiment_configurations(client, EXPERIMENT)
    assert len(configurations) == 10, [c.name for c in configurations]
    from retrieval_lab.judging.pool import judging_questions

    asked, _ = judging_questions(questions)
    t0 = time.perf_counter()
    runs, _, _, _ = pooled_runs(configurations, asked, max(DEPTHS), print)
    results["pooling_seconds"] = time.perf_counter() - t0
    results["configurations"] = [c.name for c in configurations]
    sizes = {}
    for n in range(1, len(runs) + 1):
        sizes[n] = {d: len(pool_items(runs[:n], asked.ids, d)) for d in DEPTHS}
    documents = {d: len({(i.query_id, i.doc) for i in pool_items(runs, asked.ids, d)}) for d in DEPTHS}
    results["pool_sizes"], results["pool_documents"] = sizes, documents

    folder = work / "judged"
    pool, corpus, _ = open_pool(folder, configurations, questions, 10, EXPERIMENT, report=print)
    app = JudgingApp(folder, pool, JudgementStore(folder), corpus)
    t0 = time.perf_counter()
    for item in pool.items:
        app.judge({"query_id": item.query_id, "doc": item.doc, "start": item.start, "end": item.end,
                   "grade": 2 if item.doc in qrels.get(item.query_id, {}) else 0, "evidence": []})
    results["judging_store_seconds"] = time.perf_counter() - t0
    results["judged_pairs"] = len(pool.items)
    results["evaluated_questions"] = app.judged_set.evaluated
    judged = folder / "judged.jsonl"

    before = cache_counts(warm)
    print("re-score on the judged set (same cache)", flush=True)
    results["rescore_seconds"] = run_sweeps([f"dataset.questions={judged}"], f"{EXPERIMENT}-judged", env, work)
    results["cache_entries_before"], results["cache_entries_after"] = before, cache_counts(warm)
    print("run again on the judged set (empty cache)", flush=True)
    results["cold_seconds"] = run_sweeps([f"dataset.questions={judged}"], f"{EXPERIMENT}-cold",
                                         {**env, "RETRIEVAL_LAB_CACHE": str(cold)}, work)
    results["load_after"] = os.getloadavg()

    per_config = {}
    for name in (f"{EXPERIMENT}-judged", f"{EXPERIMENT}-cold"):
        exp = client.get_experiment_by_name(name)
        for r in client.search_runs([exp.experiment_id], "tags.role = 'config'", max_results=100):
            m = r.data.metrics
            row = per_config.setdefault(r.info.run_name, {})
            row[name.rsplit("-", 1)[1]] = {
                "pipeline_seconds": m.get("pipeline_seconds"), "ndcg_at_10": m.get("ndcg_at_10"),
                "judged_at_10": m.get("judged_at_10"), "pool_depth": m.get("pool_depth"),
                "first_stage_cache_hits": first_stage_hits(m)}
    results["per_config"] = per_config
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)


def report(r: dict) -> None:
    print(f"\npool size: unique (question, unit) pairs for {r['questions']} questions")
    print("| configurations | " + " | ".join(f"depth {d}" for d in DEPTHS) + " |")
    print("|---:|" + "---:|" * len(DEPTHS))
    for n, row in r["pool_sizes"].items():
        print(f"| {n} | " + " | ".join(f"{row[d]:,} ({row[d] / (int(n) * d * r['questions']):.0%})"
                                        for d in DEPTHS) + " |")
    print("(unique (question, document) pairs, 10 configurations: "
          + ", ".join(f"depth {d}: {n:,}" for d, n in r["pool_documents"].items()) + ")")
    judged = r["per_config"]
    pipeline = {k: sum(v[k]["pipeline_seconds"] or 0 for v in judged.values()) for k in ("judged", "cold")}
    hits = sum(bool(h) and all(x == 1.0 for x in h.values())
               for h in (v["judged"]["first_stage_cache_hits"] for v in judged.values()))
    print(f"\npooling 10 configurations: {r['pooling_seconds']:.1f} s; judging {r['judged_pairs']} pairs through the "
          f"store: {r['judging_store_seconds']:.2f} s")
    print("| 10 configurations on the judged set | wall (4 sweeps) | stage work (sum of pipeline_seconds) |")
    print("|---|---:|---:|")
    print(f"| re-score (cached first stages) | {r['rescore_seconds']:.1f} s | {pipeline['judged']:.1f} s |")
    print(f"| run again (empty cache) | {r['cold_seconds']:.1f} s | {pipeline['cold']:.1f} s |")
    print(f"configurations whose every first stage was replayed: {hits} of {len(judged)}; cache entries before "
          f"{r['cache_entries_before']}, after {r['cache_entries_after']}; load {r['load_before']} -> "
          f"{r['load_after']}")


if __name__ == "__main__":
    main()
