"""The parent run's report: leaderboard table (CSV + Markdown) and PNG plots of the sweep.

Plots, each drawn only when the sweep varies its parameter over two values or more:
- metric vs chunk size (`chunker.*size*` / `*tokens*`), metric vs fusion alpha (`*.alpha`),
- rerank-depth curve (`reranker.depth`, `reranker.top_k`, ...),
- quality vs query latency (p50) with the Pareto front (always, when two configurations or more finished).
Other varied parameters become the plot's series, so a chunk-size curve is drawn per embedder.
"""
from __future__ import annotations

import csv
import io
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def collect_rows(client, records) -> list[Row]:
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
        rows.append(Row(rec.run_id, rec.run_name, status, dict(run.data.metrics), dict(run.data.params)))
    return rows


def varied_params(rows: list[Row]) -> list[str]:
    keys = sorted({k for r in rows for k in r.params})
    return [k for k in keys if len({r.params.get(k) for r in rows}) > 1 and not k.startswith(("tracking.", "cache."))]


def leaderboard(rows: list[Row], metric: str) -> tuple[list[str], list[list[str]]]:
    ok = [r for r in rows if r.status != "failed" and metric in r.metrics]
    ok.sort(key=lambda r: -r.metrics[metric])
    varied = varied_params(ok)
    extra = [m for m in ("recall_at_100", LATENCY, "index_seconds") if m != metric]
    header = ["rank", "run", metric, *extra, *varied, "status", "run_id"]
    table = []
    for i, r in enumerate(ok, 1):
        table.append([str(i), r.name, f"{r.metrics[metric]:.4f}",
                      *(f"{r.metrics[m]:.4g}" if m in r.metrics else "" for m in extra),
                      *(r.params.get(k, "") for k in varied), r.status, r.run_id])
    for r in rows:
        if r.status == "failed":
            table.append(["-", r.name, "", *([""] * len(extra)), *(r.params.get(k, "") for k in varied),
                          "failed", r.run_id])
    return header, table


def markdown(header: list[str], table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table]
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


def console_leaderboard(rows: list[Row], metric: str, limit: int = 20) -> str:
    """The leaderboard as the sweep prints it: rank, run, the metric, recall@100, p50 latency, new or resumed."""
    ok = sorted((r for r in rows if r.status != "failed" and metric in r.metrics), key=lambda r: -r.metrics[metric])
    if not ok:
        return ""
    columns = [metric, *(m for m in ("recall_at_100", "judged_at_10")  # judged@10: on a judged set (judge)
                         if m != metric and any(m in r.metrics for r in ok))]
    header = ["rank", "run", *columns, "p50 ms", "status"]
    table = [[str(i), r.name, *(f"{r.metrics[c]:.4f}" if c in r.metrics else "-" for c in columns),
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
    return "\n".join(lines)


def write_parent_report(client, ctx, records, metric: str, rows: list[Row] | None = None) -> list[str]:
    """Log leaderboard.csv/.md, the plots and summary metrics on the parent run; returns the artifact names."""
    from mlflow.entities import Metric

    rows = collect_rows(client, records) if rows is None else rows
    header, table = leaderboard(rows, metric)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *table])
        (folder / "leaderboard.csv").write_text(buf.getvalue())
        (folder / "leaderboard.md").write_text(markdown(header, table))
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
    client.log_batch(ctx.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
    return names
