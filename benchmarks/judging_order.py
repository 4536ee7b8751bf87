"""Which judging order decides sooner: global (most retrieved first), question by question, and decisive, with a
simulated assessor answering from the real qrels, on SciFact and NFCorpus.

The experiment per dataset is the 10-configuration one of the pooled-judging benchmark (benchmarks/judging.py):
BM25 k1 0.9/1.5 x b 0.4/0.75, WordLlama dense, its convex hybrid with BM25 at alpha 0.3/0.5/0.7, BM25 over 128-token
chunks returning the chunk or the whole document; 4 sweeps into one experiment with its own cache. Every
configuration's top 10 units are pooled once for all test queries (`retrieval-lab judge`'s pooling, in process).

Then, for --samples random samples of --questions test queries (seeded), the pool of those questions is judged in
each order by a simulated assessor: a unit's grade is its document's grade in the test qrels (SciFact's 1 becomes 2,
"relevant", as in judging.py; NFCorpus keeps its grades 1-2), 0 when the qrels do not list it. After every
judgement the stopping rule is evaluated (judging/decide.py). Reported per order, over the samples:
- judgements until the leader under the rule's metric (mean DCG@10 over the questions, unjudged units at their
  expected grade) is the complete pool's winner from then on;
- judgements until Kendall's tau between that ranking and the complete pool's ranking stays >= 0.9;
- judgements until the stopping rule fires (certain: the leader's worst case beats every other configuration), and
  whether the configuration it named is the complete pool's winner and leads the runner-up it named by at least the
  D it stated (it must be, in every sample);
- judgements until the forecast first says "likely leader" (the 95% estimate), and whether it named the complete
  pool's winner.

    .venv/bin/python benchmarks/judging_order.py [--datasets scifact nfcorpus] [--questions 50] [--samples 20]
        [--work DIR] [--out benchmarks/results/judging_order.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CLI = [sys.executable, "-m", "retrieval_lab.cli"]
SWEEPS = [
    ["retriever=bm25", "retriever.k1=0.9,1.5", "retriever.b=0.4,0.75"],
    ["+pipeline=dense_wordllama"],
    ["+pipeline=hybrid_wordllama", "retriever.fusion.alpha=0.3,0.5,0.7"],
    ["retriever=bm25", "chunker=fixed_tokens", "unit=chunk,document"],
]
DEPTH = 10
ORDERS = ("global", "question", "decisive")
# --orders decisive-variance: the decisive order as first built (each unit's share of the open differences' variance
# under the grade estimates), for comparison with MTC's bound-tightening choice that `decisive` makes now
COMPARED = ("decisive-variance",)


def variance_values(board, grades, decision=None):
    from retrieval_lab.judging.decide import decide

    decision = decision or decide(board, grades)
    open_ = [c.index for c in decision.contenders] or [c.index for c in decision.challengers if not c.exact]
    if not open_:
        return np.zeros(len(grades))
    share = (board.weights[:, [decision.leader]] - board.weights[:, open_]) ** 2 * \
        decision.estimates.variance[:, None]
    total = share.sum(axis=0)
    return (share / np.where(total > 0, total, 1.0)).sum(axis=1)


def experiment_name(dataset: str) -> str:
    return f"bench-judging-order-{dataset}"


def run_sweeps(dataset: str, env: dict, work: Path) -> None:
    for n, args in enumerate(SWEEPS):
        proc = subprocess.run([*CLI, "sweep", f"dataset={dataset}", *args,
                               f"tracking.experiment={experiment_name(dataset)}",
                               f"hydra.sweep.dir={work / 'multirun' / dataset / str(n)}"],
                              capture_output=True, text=True, env=env, cwd=work)
        if proc.returncode != 0:
            raise SystemExit(f"sweep {args} on {dataset} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "", flush=True)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    return qrels


def pooled(dataset: str, data: Path, env: dict, work: Path) -> dict:
    """Every configuration's top DEPTH units for every test query: {"configurations": [...], "runs": [{qid: [unit
    ids]}]}, computed once and kept in the work folder."""
    cached = work / f"pooled-{dataset}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    from mlflow.tracking import MlflowClient

    from retrieval_lab.commands.judge import experiment_configurations
    from retrieval_lab.judging.pool import pooled_runs
    from retrieval_lab.types import Queries

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(experiment_name(dataset))
    if exp is None or len(experiment_configurations(client, experiment_name(dataset))) < 10:
        run_sweeps(dataset, env, work)
    configurations = experiment_configurations(client, experiment_name(dataset))
    assert len(configurations) == 10, [c.name for c in configurations]
    qrels = read_qrels(data / dataset / "qrels" / "test.tsv")
    queries = [json.loads(line) for line in open(data / dataset / "queries.jsonl", encoding="utf-8")]
    chosen = [q for q in queries if q["_id"] in qrels]
    asked = Queries([q["_id"] for q in chosen], [q["text"] for q in chosen])
    t0 = time.perf_counter()
    runs, _, _, _ = pooled_runs(configurations, asked, DEPTH, print)
    out = {"configurations": [c.name for c in configurations], "pooling_seconds": time.perf_counter() - t0,
           "runs": [{q: [uid for uid, _ in run.get(q, [])[:DEPTH]] for q in asked.ids} for run in runs]}
    cached.write_text(json.dumps(out))
    return out


def sample_board(pool: dict, qrels: dict, qids: list[str], graded: bool):
    """The board of the questions' pool (judging: the pool order, DCG weights) and each unit's true grade."""
    from retrieval_lab.judging.decide import Board
    from retrieval_lab.judging.pool import pool_items
    from retrieval_lab.types import Run

    runs = [Run({q: [(uid, 1.0 - i / 100) for i, uid in enumerate(run[q])] for q in qids}) for run in pool["runs"]]
    items = pool_items(runs, qids, DEPTH)
    order = {q: n for n, q in enumerate(qids)}
    board = Board.from_hits([i.hits for i in items], [order[i.query_id] for i in items], len(qids),
                            pool["configurations"], DEPTH, [i.doc for i in items])
    truth = []
    for item in items:
        grade = qrels.get(item.query_id, {}).get(item.doc, 0)
        truth.append(min(grade, 2) if graded else (2 if grade > 0 else 0))
    return board, np.array(truth, dtype=float)


def settled_from(values: list, good) -> int | None:
    """Judgements after which `good(value)` holds to the end: 1 + the last step where it does not."""
    bad = [t for t, v in enumerate(values, 1) if not good(v)]
    if not bad:
        return 0
    return bad[-1] + 1 if bad[-1] < len(values) else None


def simulate_order(order: str, board, truth: np.ndarray) -> dict:
    from scipy.stats import kendalltau, rankdata

    from retrieval_lab.judging import order as orders
    from retrieval_lab.judging.decide import decide, grade_estimates, unit_values

    orders.unit_values = variance_values if order == "decisive-variance" else unit_values
    order = order.split("-")[0]
    next_unit = orders.next_unit

    complete = truth @ board.weights / board.questions
    winner = int(np.argmax(complete))
    tied = bool(np.sum(np.isclose(complete, complete[winner], rtol=0, atol=1e-12)) > 1)
    grades = np.full(len(truth), np.nan)
    done = np.zeros(len(truth), dtype=bool)
    last, decision = None, decide(board, grades)
    leaders, taus, stop, forecast, tau_of = [], [], None, None, {}
    for t in range(1, len(truth) + 1):
        unit = next_unit(order, board, grades, done, last, decision=decision)
        grades[unit], done[unit], last = truth[unit], True, unit
        if stop is None or order == "decisive":  # the decisive order needs the decision to choose the next unit
            decision = decide(board, grades)
            scores = decision.scores
        else:  # once the rule has fired, only the ranking is followed: the scores alone
            scores = grade_estimates(board, grades).mean @ board.weights / board.questions
        leaders.append(int(np.argmax(scores)))
        ranks = tuple(rankdata(scores))  # tau changes only when the ranking does
        if ranks not in tau_of:
            tau_of[ranks] = kendalltau(scores, complete).statistic
        taus.append(tau_of[ranks])
        if forecast is None and stop is None and decision.likely:
            forecast = {"judgements": t, "leader": board.names[decision.leader],
                        "right": bool(decision.leader == winner)}
        if stop is None and decision.decided:
            y = decision.runner_up
            stop = {"judgements": t, "leader": board.names[decision.leader], "runner_up": y.name,
                    "at_least": y.lower,
                    "right": bool(decision.leader == winner
                                  and complete[decision.leader] - complete[y.index] >= y.lower - 1e-12)}
    return {"units": len(truth), "winner": board.names[winner], "winner_tied": tied,
            "to_winner": settled_from(leaders, lambda v: v == winner),
            "to_tau": settled_from(taus, lambda v: v >= 0.9), "stop": stop,
            "forecast": forecast or stop and {**stop, "right": bool(stop["right"])}}


def simulate_dataset(pool: dict, qrels: dict, questions: int, seeds: range, dataset: str,
                     orders: tuple[str, ...] = ORDERS) -> dict:
    qids = sorted(pool["runs"][0])
    graded = dataset != "scifact"
    out = {"configurations": pool["configurations"], "samples": []}
    for seed in seeds:
        chosen = random.Random(seed).sample(qids, questions)
        board, truth = sample_board(pool, qrels, chosen, graded)
        row = {"seed": seed, "units": len(truth)}
        for order in orders:
            t0 = time.perf_counter()
            row[order] = simulate_order(order, board, truth)
            row[order]["seconds"] = time.perf_counter() - t0
        print(f"{dataset} sample {seed}: {len(truth)} units; " + "; ".join(
            f"{o}: winner {row[o]['to_winner']}, tau {row[o]['to_tau']}, stop "
            f"{row[o]['stop'] and (row[o]['stop']['judgements'], row[o]['stop']['right'])} forecast "
            f"{row[o]['forecast'] and (row[o]['forecast']['judgements'], row[o]['forecast']['right'])}"
            for o in orders),
            flush=True)
        out["samples"].append(row)
    return out


def explain_wrong(results: dict, work: Path, data: Path) -> None:
    """For each stop that was wrong, how wrong: the complete pool's score of its winner, of the leader named and of
    the runner-up named (the samples are rebuilt from their seeds)."""
    for dataset, r in results["datasets"].items():
        pool = json.loads((work / f"pooled-{dataset}.json").read_text())
        qrels = read_qrels(data / dataset / "qrels" / "test.tsv")
        qids = sorted(pool["runs"][0])
        for row in r["samples"]:
            for order in [o for o in (*ORDERS, *COMPARED) if o in row]:
                stop = row[order]["stop"]
                if not stop or stop["right"]:
                    continue
                chosen = random.Random(row["seed"]).sample(qids, results["questions"])
                board, truth = sample_board(pool, qrels, chosen, dataset != "scifact")
                complete = dict(zip(board.names, truth @ board.weights / board.questions))
                stop["complete"] = {"winner": max(complete.values()), "leader": complete[stop["leader"]],
                                    "runner_up": complete[stop["runner_up"]]}


def report(results: dict) -> None:
    print(f"\n{results['samples']} samples of {results['questions']} questions; load {results['load_before']} -> "
          f"{results['load_after']}")
    print("| dataset | order | pool units | to the complete pool's winner | to Kendall tau >= 0.9 | until the rule "
          "stops | rule right | forecast 'likely leader' from | forecast right |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for dataset, r in results["datasets"].items():
        rows = r["samples"]
        present = [o for o in (*ORDERS, *COMPARED) if o in rows[0]]
        for order in present:
            def stat(key):
                vals = [s[order][key] for s in rows if s[order][key] is not None]
                share = np.mean([v / s["units"] for v, s in zip(vals, rows)]) if vals else float("nan")
                return f"{np.mean(vals):.0f} ({share:.0%}; median {np.median(vals):.0f})" if vals else "-"
            stops = [s[order]["stop"] for s in rows]
            fired = [(x["judgements"], s["units"]) for x, s in zip(stops, rows) if x]
            stop_text = (f"{np.mean([j for j, _ in fired]):.0f} ({np.mean([j / u for j, u in fired]):.0%})"
                         f"{'' if len(fired) == len(rows) else f', fired in {len(fired)} of {len(rows)}'}"
                         if fired else "never")
            right = sum(x["right"] for x in stops if x)
            forecasts = [s[order].get("forecast") for s in rows]
            told = [(x["judgements"], s["units"]) for x, s in zip(forecasts, rows) if x]
            forecast_text = (f"{np.mean([j for j, _ in told]):.0f} ({np.mean([j / u for j, u in told]):.0%})"
                             if told else "never")
            print(f"| {dataset} | {order} | {np.mean([s['units'] for s in rows]):,.0f} | {stat('to_winner')} | "
                  f"{stat('to_tau')} | {stop_text} | {right} of {len(fired)} | {forecast_text} | "
                  f"{sum(x['right'] for x in forecasts if x)} of {len(told)} |")
        for order in [o for o in present if o != "global" and "global" in present]:
            ratio = [s[order]["to_winner"] / s["global"]["to_winner"] for s in rows
                     if s["global"]["to_winner"] and s[order]["to_winner"] is not None]
            print(f"  {dataset}: {order} / global judgements to the winner: mean ratio {np.mean(ratio):.2f} "
                  f"(samples where global needed any)")
        for order in present:
            for s in rows:
                stop = s[order]["stop"]
                if stop and not stop["right"] and "complete" in stop:
                    c = stop["complete"]
                    print(f"  {dataset} sample {s['seed']}, {order}: named {stop['leader']} (complete pool "
                          f"{c['leader']:.5f}; winner {c['winner']:.5f}) ahead of {stop['runner_up']} "
                          f"({c['runner_up']:.5f}) by at least {stop['at_least']:.2g}")
        tied = sum(s[present[0]]["winner_tied"] for s in rows)
        if tied:
            print(f"  {dataset}: in {tied} samples two configurations tie for the complete pool's top score")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--orders", nargs="+", default=list(ORDERS), choices=[*ORDERS, *COMPARED])
    parser.add_argument("--first-seed", type=int, default=0, help="question samples are seeded first-seed, ...")
    parser.add_argument("--work", help="working folder (default: a temporary one); pooled runs are kept there")
    parser.add_argument("--pool-only", action="store_true", help="only run the sweeps and pool")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "judging_order.json"))
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="only merge these results files (one per dataset, run side by side) into --out and "
                             "print the table")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-judging-order-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(os.environ.get("RETRIEVAL_LAB_DATA") or REPO.parent / "shared" / "datasets")
    env = {**os.environ, "RETRIEVAL_LAB_DATA": str(data), "RETRIEVAL_LAB_CACHE": str(work / "cache"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    os.environ.update(env)
    if args.report:
        results = json.loads(Path(args.report[0]).read_text())
        for extra in args.report[1:]:
            more = json.loads(Path(extra).read_text())
            for name, got in more["datasets"].items():  # samples of one dataset may come in several files
                if name in results["datasets"]:
                    results["datasets"][name]["samples"] += got["samples"]
                else:
                    results["datasets"][name] = got
            results["samples"] = len(next(iter(results["datasets"].values()))["samples"])
            results["load_after"] = more["load_after"]
        explain_wrong(results, work, data)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        return report(results)
    pools = {d: pooled(d, data, env, work) for d in args.datasets}
    if args.pool_only:
        return
    results = {"questions": args.questions, "samples": args.samples, "load_before": os.getloadavg(),
               "datasets": {}}
    for d in args.datasets:
        qrels = read_qrels(data / d / "qrels" / "test.tsv")
        seeds = range(args.first_seed, args.first_seed + args.samples)
        results["datasets"][d] = simulate_dataset(pools[d], qrels, args.questions, seeds, d, tuple(args.orders))
    results["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
