"""`retrieval-lab best`: rank an experiment's runs, test each against the top one over queries, pick the cheapest.

Each run's `per_query.csv` artifact holds the metric per query. Every run is compared with the top run by a paired
test over the queries both evaluated (two-sided randomization test by sign flips, or a paired t-test); the p-values
are Holm-corrected over all comparisons. The cheapest configuration (by `query_p50_ms`) whose difference to the top
is not significant at `alpha` is named beside the top one.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval_lab import tracking
from retrieval_lab.commands.export import evaluate_hints, export_run, read_export
from retrieval_lab.errors import LabError

COST = "query_p50_ms"


def randomization_test(a: np.ndarray, b: np.ndarray, trials: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of mean(a - b) = 0; p in (0, 1]."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, trials, 2000):
        n = min(2000, trials - start)
        signs = rng.integers(0, 2, size=(n, len(d)), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ d) / len(d) >= observed - 1e-12).sum())
    return (hits + 1) / (trials + 1)


def paired_ttest(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2 or not np.any(d):
        return 1.0
    if np.allclose(d, d[0]):
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


TESTS = {"randomization": randomization_test, "ttest": paired_ttest}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def against_top(top, others, test: str = "randomization", trials: int = 10000) -> tuple[list[float], list[float]]:
    """Raw and Holm-adjusted p-values of each of `others` against `top`: per-query values over the same queries."""
    a = np.asarray(top, dtype=np.float64)
    raw = [TESTS[test](a, np.asarray(b, dtype=np.float64), trials) if test == "randomization"
           else TESTS[test](a, np.asarray(b, dtype=np.float64)) for b in others]
    return raw, holm(raw)


@dataclass
class Candidate:
    run_id: str
    name: str
    mean: float
    cost: float | None
    per_query: dict[str, float] = field(default_factory=dict)
    p: float | None = None
    p_holm: float | None = None
    tags: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def significantly_worse(self) -> bool:
        return self.p_holm is not None and self.p_holm < self._alpha

    _alpha: float = 0.05


@dataclass
class Ranking:
    metric: str
    test: str
    alpha: float
    candidates: list[Candidate]  # best first
    top: Candidate
    cheapest: Candidate
    queries: int


def finished_runs(client, experiment: str, sweep: str | None = None) -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise LabError(f"no MLflow experiment '{experiment}' in {client.tracking_uri} (experiments: {names})\n"
                       "  fix: run a sweep first (`retrieval-lab sweep quickstart`) or pass --experiment NAME")
    query = "attributes.status = 'FINISHED' and tags.role = 'config'"
    if sweep:
        query += f" and tags.sweep_id = '{sweep}'"
    runs = client.search_runs([exp.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=5000)
    seen, out = set(), []
    for run in runs:  # a configuration re-run (e.g. after a code change) counts once: its newest run
        key = run.data.tags.get("params_hash") or run.data.tags.get("config_hash") or run.info.run_id
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def per_query_values(client, run_id: str, metric: str) -> dict[str, float]:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "per_query.csv", tmp)
        except Exception as exc:
            raise LabError(f"run {run_id} has no per_query.csv artifact ({exc})") from exc
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if metric not in (reader.fieldnames or []):
                raise LabError(f"run {run_id}: per_query.csv has no column '{metric}'")
            # a blank cell: the metric is not defined for that query (span metrics on queries without span gold)
            return {row["query_id"]: float(row[metric]) for row in reader if row[metric] != ""}


def rank(client, experiment: str, metric: str = "ndcg_at_10", test: str = "randomization", alpha: float = 0.05,
         sweep: str | None = None, trials: int = 10000) -> Ranking:
    if test not in TESTS:
        raise LabError(f"unknown test '{test}': use one of {', '.join(TESTS)}")
    runs = [r for r in finished_runs(client, experiment, sweep) if metric in r.data.metrics]
    if not runs:
        raise LabError(f"experiment '{experiment}' has no FINISHED configuration run with metric '{metric}'")
    runs.sort(key=lambda r: -r.data.metrics[metric])
    top_run = runs[0]
    dataset_hash = top_run.data.tags.get("dataset_hash")
    split = top_run.data.tags.get("split")
    # Only runs over the same queries can be paired.
    runs = [r for r in runs if r.data.tags.get("dataset_hash") == dataset_hash and r.data.tags.get("split") == split]
    candidates = []
    for r in runs:
        try:
            values = per_query_values(client, r.info.run_id, metric)
        except LabError as exc:  # e.g. artifacts deleted: the run cannot be tested, say so and go on
            print(f"warning: skipped {r.info.run_name}: {exc}", file=sys.stderr)
            continue
        c = Candidate(r.info.run_id, r.info.run_name or r.info.run_id[:8], r.data.metrics[metric],
                      r.data.metrics.get(COST), values, tags=dict(r.data.tags), metrics=dict(r.data.metrics))
        c._alpha = alpha
        candidates.append(c)
    if not candidates:
        raise LabError(f"no run of experiment '{experiment}' has a readable per_query.csv")
    top = candidates[0]
    qids = sorted(set(top.per_query).intersection(*(set(c.per_query) for c in candidates[1:])))
    if not qids:
        raise LabError("the runs share no evaluated query: they cannot be compared")
    raw, adjusted = against_top([top.per_query[q] for q in qids],
                                [[c.per_query[q] for q in qids] for c in candidates[1:]], test, trials)
    for c, p, ph in zip(candidates[1:], raw, adjusted):
        c.p, c.p_holm = p, ph
    eligible = [c for c in candidates if not c.significantly_worse and c.cost is not None]
    cheapest = min(eligible, key=lambda c: (c.cost, -c.mean)) if eligible else top
    return Ranking(metric, test, alpha, candidates, top, cheapest, len(qids))


def format_ranking(r: Ranking, limit: int = 30) -> str:
    lines = [f"{len(r.candidates)} configurations, {r.queries} paired queries; {r.test} test against the top run, "
             f"Holm-corrected, alpha {r.alpha}", ""]
    header = f"{'#':>3}  {'run':<34} {r.metric:>12} {'delta':>8} {'p':>8} {'p_holm':>8} {'':3} {COST:>13}  run id"
    lines.append(header)
    for i, c in enumerate(r.candidates[:limit], 1):
        delta = c.mean - r.top.mean
        p = "" if c.p is None else f"{c.p:.4f}"
        ph = "" if c.p_holm is None else f"{c.p_holm:.4f}"
        mark = "*" if c.significantly_worse else ""
        cost = "" if c.cost is None else f"{c.cost:.2f}"
        lines.append(f"{i:>3}  {c.name[:34]:<34} {c.mean:>12.4f} {delta:>+8.4f} {p:>8} {ph:>8} {mark:3} {cost:>13}  "
                     f"{c.run_id}")
    if len(r.candidates) > limit:
        lines.append(f"  ... {len(r.candidates) - limit} more")
    lines += ["", "  * significantly worse than the top run", "",
              f"top:      {r.top.name}  {r.metric} {r.top.mean:.4f}  ({COST} {_fmt(r.top.cost)})  run {r.top.run_id}",
              f"cheapest not significantly worse: {r.cheapest.name}  {r.metric} {r.cheapest.mean:.4f} "
              f"({COST} {_fmt(r.cheapest.cost)}, p_holm {_fmt(r.cheapest.p_holm)})  run {r.cheapest.run_id}"]
    generators = sorted({c.tags.get("synth_generator", "?") for c in r.candidates
                         if c.tags.get("eval_set") == "synthetic"})
    if generators:
        lines += ["", f"caution: these runs are scored on synthetic questions ({', '.join(generators)} generator): "
                      "they favour configurations that match the generator's wording (a copied or keyword "
                      "question favours BM25), so this order may differ from real questions'; confirm the "
                      "choice on questions people asked (a questions file, or judged pools)"]
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def cmd_best(args) -> int:
    client = tracking.client({})
    ranking = rank(client, args.experiment, args.metric, args.test, args.alpha, args.sweep, args.trials)
    print(format_ranking(ranking))
    if args.export:
        chosen = ranking.top if args.pick == "top" else ranking.cheapest
        path = export_run(client, chosen.run_id, Path(args.export), selection={
            "metric": ranking.metric, "rule": args.pick, "test": ranking.test, "alpha": ranking.alpha,
            "p_holm_vs_top": chosen.p_holm, "top_run_id": ranking.top.run_id})
        print(f"\nexported {args.pick} configuration (run {chosen.run_id}) to {path}")
        print(f"  search:   retrieval-lab search --config {path} \"your query\"")
        for hint in evaluate_hints(path, read_export(path)["config"]):
            print(f"  evaluate: {hint}")
    return 0
