"""One configuration of a sweep: skip it when already FINISHED, else open a tagged child run, evaluate, log.

Each configuration prints one line: progress and ETA, its name, the main metric, the end-to-end query latency
(p50) and its state (done, resumed, or FAILED with the reason); `retrieval-lab -v sweep` adds its metrics table.
A failing configuration ends its child run FAILED (error message as a tag, traceback in `error.txt`) and returns
NaN instead of raising, so Hydra runs the other configurations without printing its own traceback; the sweep's
callback exits non-zero at the end. The results of the others are kept.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
import traceback

from omegaconf import DictConfig, OmegaConf, open_dict

from retrieval_lab import console
from retrieval_lab.data import load_dataset
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.sweep.report import LATENCY
from retrieval_lab.sweep.state import (JobRecord, SweepContext, config_hash, host, maybe_fault, maybe_hold,
                                       params_hash, progress_line, read_records, run_name_from_overrides,
                                       write_record)

log = logging.getLogger("retrieval_lab.sweep")

NAME_WIDTH = 28  # configuration names are padded to this, so the scores of short names line up


def _job_overrides() -> tuple[int, list[str]]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    num = int(hc.job.num) if "num" in hc.job and hc.job.num is not None else 0
    return num, list(hc.overrides.task)


def run_sweep_job(cfg: DictConfig, ctx: SweepContext) -> float:
    from retrieval_lab import tracking
    from retrieval_lab.pipeline import validate
    from retrieval_lab.pipeline.tracked import evaluate_and_log, resolved_config
    from retrieval_lab.sweep.resume import find_finished, mark_orphans

    started = time.time()
    num, overrides = _job_overrides()
    name = run_name_from_overrides(overrides, [k for k in ctx.keys.split(",") if k])
    metric = os.environ.get("RETRIEVAL_LAB_SWEEP_METRIC", "ndcg_at_10")
    if ctx.tracking_uri:  # beside the parent, whatever this worker's cwd or tracking.server_dir would resolve to
        with open_dict(cfg):
            cfg.tracking.uri = ctx.tracking_uri
    node = cfg.get("tracking") or {}
    client = tracking.client(node)
    maybe_fault("job_start")
    chash = ""
    run_id = None
    try:
        check_main_metric(metric, validate(cfg).eval)
        dataset = load_dataset(cfg.dataset, cache_root=OmegaConf.select(cfg, "cache.dir"))
        resolved = resolved_config(cfg)
        chash = config_hash(resolved, dataset.fingerprint, ctx.source_revision)
        done = find_finished(client, ctx.experiment_id, chash)
        if done is not None:
            value = done.data.metrics.get(metric)
            write_record(ctx.state_dir, JobRecord(num, "skipped", done.info.run_id, name, chash, overrides,
                                                  value, time.time() - started))
            _report(ctx, name, _scores(metric, value, done.data.metrics.get(LATENCY)) + _judged(done.data.metrics)
                    + "  resumed")
            return float(value or 0.0)
        mark_orphans(client, ctx.experiment_id, chash, attempt_of=(ctx.sweep_id, num))
        tags = {"role": "config", "sweep_id": ctx.sweep_id, "study": ctx.study, "config_hash": chash,
                "params_hash": params_hash(resolved, dataset.fingerprint), "code_version": ctx.source_revision,
                "git_commit": ctx.source_revision, "parent_run_id": ctx.parent_run_id,
                "mlflow.parentRunId": ctx.parent_run_id, "job_num": str(num), "overrides": " ".join(overrides)[:4000],
                "host": host(), "pid": str(os.getpid()), "mlflow.runName": name}
        run_id = client.create_run(ctx.experiment_id, run_name=name, tags=tags).info.run_id
        maybe_hold("child_running")
        maybe_fault("child_running")
        t0 = time.perf_counter()

        def timed(outcome) -> None:
            outcome.extra_metrics["pipeline_seconds"] = time.perf_counter() - t0  # the stage work of this config

        outcome = evaluate_and_log(cfg, dataset=dataset, tags=tags, run_id=run_id, before_logging=timed).outcome
        maybe_fault("child_finished")
        value = main_metric(outcome, metric)
        write_record(ctx.state_dir, JobRecord(num, "finished", run_id, name, chash, overrides, value,
                                              time.time() - started))
        _report(ctx, name, _scores(metric, value, outcome.timings.get(LATENCY)) + _judged(outcome.extra_metrics)
                + "  done")
        if console.verbose():
            print(tracking.summary_table(outcome), flush=True)
        return float(value)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        if run_id is not None:
            try:
                client.set_tag(run_id, "error", message[:4000])
                with _tmp_text("error.txt", traceback.format_exc()) as path:
                    client.log_artifact(run_id, path)
                client.set_terminated(run_id, "FAILED")
            except Exception as log_exc:  # the store itself failed: keep the original error
                log.warning("could not mark run %s FAILED: %s", run_id, log_exc)
        else:  # failed before a run existed (config or data error): leave a FAILED run to show it
            try:
                tags = {"role": "config", "sweep_id": ctx.sweep_id, "study": ctx.study, "config_hash": chash,
                        "mlflow.parentRunId": ctx.parent_run_id, "parent_run_id": ctx.parent_run_id,
                        "job_num": str(num), "overrides": " ".join(overrides)[:4000], "error": message[:4000],
                        "host": host(), "pid": str(os.getpid())}
                run_id = client.create_run(ctx.experiment_id, run_name=name, tags=tags).info.run_id
                client.set_terminated(run_id, "FAILED")
            except Exception:
                pass
        write_record(ctx.state_dir, JobRecord(num, "failed", run_id, name, chash, overrides, None,
                                              time.time() - started, message))
        reason = " ".join(message.split())  # one line, whatever the message's layout
        _report(ctx, name, f"FAILED: {reason if len(reason) <= 240 else reason[:237] + '...'}")
        if not isinstance(exc, LabError):  # a bug, not the user's config or data: its traceback matters
            if console.verbose():
                traceback.print_exc()
            else:
                where = f"error.txt of run {run_id}" if run_id else "retrieval-lab -v sweep ..."
                print(f"  traceback: {where}", file=sys.stderr, flush=True)
        return math.nan  # not an exception: Hydra would print its own traceback; the callback sets the exit code


def check_main_metric(metric: str, settings) -> None:
    """Before any work: a ranking metric at a cutoff (`ndcg_at_10`) needs that metric and that cutoff in `eval`
    (else every configuration would run, then fail to report it). Other names (span metrics) are checked after."""
    family, _, k = metric.rpartition("_at_")
    if family not in settings.metrics or not k.isdigit():
        return
    if int(k) not in settings.k:
        ks = sorted(settings.k)
        raise ConfigError("sweep.metric", f"{metric!r} needs the cutoff {k} in eval.k, which is {ks}",
                          f"add it (eval.k=[{','.join(map(str, sorted({*ks, int(k)})))}]), or rank by a cutoff "
                          f"computed: sweep.metric={family}_at_{ks[-1]}")


def main_metric(outcome, metric: str) -> float:
    """The sweep's main metric: a ranking metric, or one of the extra metrics (span metrics, chunk statistics)."""
    for metrics in (outcome.evaluation.means, outcome.extra_metrics):
        if metric in metrics:
            return float(metrics[metric])
    raise ConfigError("sweep.metric", f"{metric!r} is not a metric of this configuration",
                      "pick one of its logged metrics, e.g. sweep.metric=ndcg_at_10 (span metrics such as "
                      "evidence_coverage_budget_512 need a dataset with evidence: dataset.questions or SciFact)")


def _scores(metric: str, value, latency_ms) -> str:
    shown = "-" if value is None else f"{float(value):.4f}"
    return f"{metric} {shown}  p50 {format_ms(latency_ms)}"


def _judged(metrics: dict) -> str:
    """On a judged set (`retrieval-lab judge`): the share of the top 10 that was judged and the pool's depth."""
    if "judged_at_10" not in metrics:
        return ""
    return f"  judged@10 {float(metrics['judged_at_10']):.2f} (pool depth {int(metrics.get('pool_depth', 0))})"


def format_ms(value) -> str:
    if value is None:
        return "- ms"
    value = float(value)
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _report(ctx: SweepContext, name: str, result: str) -> None:
    """The configuration's one console line, after its record is written (so the count includes it)."""
    print(f"[{progress_line(ctx, read_records(ctx.state_dir))}] {name:<{NAME_WIDTH}}  {result}", flush=True)


class _tmp_text:
    def __init__(self, name: str, text: str):
        self.name, self.text = name, text

    def __enter__(self) -> str:
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, self.name)
        with open(path, "w") as fh:
            fh.write(self.text)
        return path

    def __exit__(self, *exc) -> None:
        self.dir.cleanup()
