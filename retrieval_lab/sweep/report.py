"""The parent run's report: leaderboard table (CSV + Markdown) and PNG plots of the sweep.

Plots, each drawn only when the sweep varies its parameter over two values or more:
- metric vs chunk size (`chunker.*size*` / `*tokens*`), metric vs fusion alpha (`*.alpha`),
- rerank-depth curve (`reranker.depth`, `reranker.top_k`, ...),
- quality vs query latency (p50) with the Pareto front (always, when two configurations or more finished).
Other varied parameters become the plot's series, so a chunk-size curve is drawn per embedder.

The leaderboard holds each configuration's difference to the top with its paired 95% interval and its probability of
being best, and leaderboard.md ends with the power line (evaluate/significance.py, as `retrieval-lab best` prints
them), from each run's per_query.csv.
"""
from __future__ import annotations

import csv
import io
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.errors import LabError

LATENCY = "query_p50_ms"

# plot file -> (title, x label, regex over flattened param keys)
PLOTS = {
    "metric_vs_chunk_size.png": ("{metric} vs chunk size", "chunk size",
                                 re.compile(r"^chunker\.(\w*size\w*|\w*tokens\w*|\w*length\w*|\w*chars\w*)$")),
    "metric_vs_fusion_alpha.png": ("{metric} vs fusion alpha", "alpha (weight of the first retriever)",
                                   re.compile(r"^(retriever|fusion)(\.\w+)*\.(alpha|weight)$")),
    "rerank_depth_curve.png": ("{metric} vs rerank depth", "documents reranked",
                               re.compile(r"^(reranker|rerank)(\.\w+)*\.(depth|top_k|k|candidates)$")),
}


@dataclass
class Row:
    run_id: str
    name: str
    status: str  # new | resumed | failed
    metrics: dict
    params: dict
    per_query: dict = field(default_factory=dict)  # question -> value of the sweep's metric (per_query.csv)


def collect_rows(client, records, metric: str | None = None) -> list[Row]:
    """The sweep's rows; with `metric`, each finished row's per-query values of it (for the intervals)."""
    from retrieval_lab.tracking import per_query_values

    rows = []
    for rec in records:
        if not rec.run_id:
            rows.append(Row("", rec.run_name, "failed", {}, {}))
            continue
        try:
            run = client.get_run(rec.run_id)
        except Exception:
            continue
        status = {"finished": "new", "skipped": "resumed"}.get(rec.status, "failed")
        per_query = {}
        if metric and status != "failed" and metric in run.data.metrics:
            try:
                per_query = per_query_values(client, rec.run_id, metric)
            except LabError:  # no per-query values: the leaderboard goes without intervals, and says so
                per_query = {}
        rows.append(Row(rec.run_id, rec.run_name, status, dict(run.data.metrics), dict(run.data.params), per_query))
    return rows


def recommendation_of(rows: list[Row], metric: str):
    """`best`'s comparison of the finished rows against the top (the one leaderboard, evaluate/leaderboard.py:
    intervals, P(best), power; rows named by run id), or a sentence saying why there is none."""
    from retrieval_lab.evaluate.leaderboard import DifferentQuestions, rank

    ok = [r for r in rows if r.status != "failed" and metric in r.metrics]
    if not ok:
        return None, "no finished configuration"
    lacking = [r.name for r in ok if not r.per_query]
    if lacking:
        return None, f"no per-query values for {len(lacking)} configurations (e.g. {lacking[0]})"
    try:
        board = rank(ok, metric, lambda r: r.per_query, lambda r: r.run_id, lambda r: r.metrics.get(LATENCY),
                     trials=2000)
    except DifferentQuestions:
        return None, "the configurations were evaluated on different questions"
    return board.recommendation, ""


def ranked(rows: list[Row], metric: str, rec=None) -> tuple[list[Row], dict]:
    """The finished rows with the metric, best first (with `rec`, in its order: its means are over the shared
    questions), and each one's recommendation row by run id."""
    ok = sorted((r for r in rows if r.status != "failed" and metric in r.metrics), key=lambda r: -r.metrics[metric])
    stats = {row.name: row for row in rec.rows} if rec is not None else {}
    if stats:
        order = [row.name for row in rec.rows]
        ok.sort(key=lambda r: order.index(r.run_id))
    return ok, stats


def varied_params(rows: list[Row]) -> list[str]:
    keys = sorted({k for r in rows for k in r.params})
    return [k for k in keys if len({r.params.get(k) for r in rows}) > 1 and not k.startswith(("tracking.", "cache."))]


def leaderboard(rows: list[Row], metric: str, rec=None) -> tuple[list[str], list[list[str]]]:
    """Rows best first; with `rec` (recommendation_of), the delta to the top with its paired 95% interval and the
    probability of being best."""
    ok, stats = ranked(rows, metric, rec)
    varied = varied_params(ok)
    extra = [m for m in ("recall_at_100", LATENCY, "index_seconds") if m != metric]
    compared = ["delta", "delta_95_low", "delta_95_high", "p_best"] if stats else []
    header = ["rank", "run", metric, *compared, *extra, *varied, "status", "run_id"]
    table = []
    for i, r in enumerate(ok, 1):
        cells = []
        if stats:
            row = stats[r.run_id]
            top = i == 1
            cells = ["" if top else f"{row.delta:+.4f}", "" if top else _signed(row.delta_low),
                     "" if top else _signed(row.delta_high), f"{row.p_best:.3f}"]
        table.append([str(i), r.name, f"{r.metrics[metric]:.4f}", *cells,
                      *(f"{r.metrics[m]:.4g}" if m in r.metrics else "" for m in extra),
                      *(r.params.get(k, "") for k in varied), r.status, r.run_id])
    for r in rows:
        if r.status == "failed":
            table.append(["-", r.name, "", *([""] * (len(compared) + len(extra))),
                          *(r.params.get(k, "") for k in varied), "failed", r.run_id])
    return header, table


def _signed(value: float) -> str:
    return "" if math.isnan(value) else f"{value:+.4f}"


def summary_lines(rec, why: str = "", p_best: bool = True) -> list[str]:
    """What leaderboard.md and the console say under the table: the power line, or why there are no intervals."""
    from retrieval_lab.evaluate.recommendation import power_lines

    if rec is None:
        return [f"no intervals: {why}"] if why else []
    legend = f"delta: the difference to the top with its paired 95% interval (t over the {rec.queries} questions)"
    if p_best:
        legend += "; p_best: the share of 2,000 bootstrap resamples of the questions in which it is on top"
    return [legend, *power_lines(rec)]


def markdown(header: list[str], table: list[list[str]], notes: list[str] = ()) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table]
    if notes:
        lines += ["", *(f"{note}  " for note in notes)]
    return "\n".join(lines) + "\n"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower x = cost and higher y = quality), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def plot_files(rows: list[Row], metric: str, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.status != "failed" and metric in r.metrics]
    written = []
    if len(ok) < 2:
        return written
    varied = varied_params(ok)
    for filename, (title, xlabel, pattern) in PLOTS.items():
        keys = [k for k in varied if pattern.match(k) and all(_number(r.params.get(k)) is not None
                                                              for r in ok if k in r.params)]
        if not keys:
            continue
        key = keys[0]
        short = key.split(".")[-1]
        series: dict[str, list[tuple[float, float]]] = {}
        for r in ok:
            x = _number(r.params.get(key))
            if x is None:
                continue
            # one line per combination of the other swept values (the run name without this key)
            label = " ".join(p for p in r.name.split() if not p.startswith(f"{short}=")) or metric
            series.setdefault(label, []).append((x, r.metrics[metric]))
        if len({x for pts in series.values() for x, _ in pts}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, pts in sorted(series.items())[:12]:
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if filename == "rerank_depth_curve.png":  # the first stage's recall at each depth bounds the reranker
            ceiling = sorted({(x, r.metrics[f"first_stage_recall_at_{int(x)}"]) for r in ok
                              if (x := _number(r.params.get(key))) is not None
                              and f"first_stage_recall_at_{int(x)}" in r.metrics})
            if ceiling:
                twin = ax.twinx()
                twin.plot([c[0] for c in ceiling], [c[1] for c in ceiling], color="gray", linestyle="--",
                          marker="x", label="first-stage recall@depth (ceiling)")
                twin.set_ylabel("first-stage recall@depth")
                twin.legend(fontsize=7, loc="lower right")
        ax.set_xlabel(f"{xlabel} ({key})")
        ax.set_ylabel(metric)
        ax.set_title(title.format(metric=metric))
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / filename, dpi=110)
        plt.close(fig)
        written.append(filename)
    pts = [(r.metrics[LATENCY], r.metrics[metric], r.name) for r in ok if LATENCY in r.metrics]
    if len(pts) >= 2:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", alpha=0.6, label="configurations")
        front = pareto_front([(p[0], p[1]) for p in pts])
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], color="tab:red", marker="o",
                label="Pareto front")
        for i in front:
            ax.annotate(pts[i][2][:40], (pts[i][0], pts[i][1]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xlabel("query latency p50 (ms, one query at a time)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs latency")
        if max(p[0] for p in pts) / max(min(p[0] for p in pts), 1e-9) > 30:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "quality_vs_latency.png", dpi=110)
        plt.close(fig)
        written.append("quality_vs_latency.png")
    return written


def console_leaderboard(rows: list[Row], metric: str, limit: int = 20, rec=None, why: str = "") -> str:
    """The leaderboard as the sweep prints it: rank, run, the metric, its delta to the top with the paired 95%
    interval (with `rec`), recall@100, p50 latency, new or resumed; then the power line."""
    ok, stats = ranked(rows, metric, rec)
    if not ok:
        return ""
    columns = [metric, *(m for m in ("recall_at_100", "judged_at_10")  # judged@10: on a judged set (judge)
                         if m != metric and any(m in r.metrics for r in ok))]
    compared = ["delta [95% interval]"] if stats else []
    header = ["rank", "run", metric, *compared, *columns[1:], "p50 ms", "status"]

    def delta(i, r):
        row = stats[r.run_id]
        return [""] if i == 1 else [f"{row.delta:+.4f} [{_signed(row.delta_low)}, {_signed(row.delta_high)}]"]

    table = [[str(i), r.name, f"{r.metrics[metric]:.4f}", *(delta(i, r) if stats else []),
              *(f"{r.metrics[c]:.4f}" if c in r.metrics else "-" for c in columns[1:]),
              f"{r.metrics[LATENCY]:.1f}" if LATENCY in r.metrics else "-", r.status]
             for i, r in enumerate(ok[:limit], 1)]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    numeric = {0, *range(2, len(header) - 1)}  # right-aligned columns

    def line(cells):
        return "  " + "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                                for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(header), *(line(row) for row in table)]
    if len(ok) > limit:
        lines.append(f"  ... {len(ok) - limit} more in leaderboard.md of the parent run")
    lines += [f"  {note}" for note in summary_lines(rec, why, p_best=False)]
    return "\n".join(lines)


def write_parent_report(client, ctx, records, metric: str, rows: list[Row] | None = None, rec=None,
                        why: str = "") -> list[str]:
    """Log leaderboard.csv/.md, the plots and summary metrics on the parent run; returns the artifact names."""
    from mlflow.entities import Metric

    if rows is None:
        rows = collect_rows(client, records, metric)
        rec, why = recommendation_of(rows, metric)
    header, table = leaderboard(rows, metric, rec)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *table])
        (folder / "leaderboard.csv").write_text(buf.getvalue())
        (folder / "leaderboard.md").write_text(markdown(header, table, summary_lines(rec, why)))
        names = ["leaderboard.csv", "leaderboard.md"] + plot_files(rows, metric, folder)
        client.log_artifacts(ctx.parent_run_id, tmp)
    import time

    now = int(time.time() * 1000)
    values = {"configs_total": ctx.total or len(records), "configs_done": len(records),
              "configs_resumed": sum(r.status == "skipped" for r in records),
              "configs_failed": sum(r.status == "failed" for r in records),
              "sweep_wall_seconds": time.time() - ctx.started}
    scored = [r.metrics[metric] for r in rows if r.status != "failed" and metric in r.metrics]
    if scored:
        values[f"best_{metric}"] = max(scored)
    if rec is not None and rec.power is not None and math.isfinite(rec.power.detectable):
        values["detectable_difference"] = rec.power.detectable  # at 80% power, alpha 0.05, top against runner-up
        values["top_two_gap"] = rec.power.gap
        values["top_group_size"] = rec.power.top_group
        if rec.power.needed is not None:
            values["questions_to_detect_top_two_gap"] = rec.power.needed
    client.log_batch(ctx.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
    return names
