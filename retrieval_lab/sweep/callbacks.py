"""Hydra callback that wraps a multirun in one MLflow parent run.

`on_multirun_start` (main process, before any job or joblib worker starts): creates the tracking store and the
experiment, marks runs orphaned by a killed sweep as KILLED, opens the parent run and exports the sweep context to
the environment that jobs inherit. `on_multirun_end` writes the leaderboard and plots on the parent and ends it.
Hydra skips `on_multirun_end` when a job raises, so the same finalisation is registered with `atexit` (and SIGTERM
is turned into a normal exit so it runs then too): the parent always ends FINISHED, FAILED or KILLED.

This module is imported for every Hydra run (the callback is configured in conf/config.yaml): keep it light.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from retrieval_lab import tracking
from retrieval_lab.data import load_dataset
from retrieval_lab.errors import LabError
from retrieval_lab.sweep.report import collect_rows, console_leaderboard, recommendation_of, write_parent_report
from retrieval_lab.sweep.resume import mark_orphans
from retrieval_lab.sweep.state import SweepContext, host, maybe_fault, read_records, source_revision

log = logging.getLogger("retrieval_lab.sweep")


def study_name(config: DictConfig) -> str:
    choices = OmegaConf.select(config, "hydra.runtime.choices", default={}) or {}
    for group in ("experiments", "experiment"):
        if choices.get(group):
            return str(choices[group])
    return "adhoc"


def count_jobs(config: DictConfig) -> int:
    """How many configurations the sweep will run (grid sweeps: the product of the sweep lists)."""
    sweeper = OmegaConf.select(config, "hydra.sweeper", default={}) or {}
    trials = sweeper.get("n_trials")
    if trials:
        return int(trials)
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    params += list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    try:
        overrides = OverridesParser.create().parse_overrides(params)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception:  # a sweeper with its own syntax: progress shows '?' totals
        return 0


def swept_keys(config: DictConfig) -> list[str]:
    """Config keys the sweep varies (from the command line and the study's hydra.sweeper.params)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = OmegaConf.select(config, "hydra.sweeper", default={}) or {}
    items = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    items += list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    try:
        overrides = OverridesParser.create().parse_overrides(items)
    except Exception:  # another sweeper's syntax: name runs by every override
        return []
    return list(dict.fromkeys(o.get_key_element().lstrip("+~") for o in overrides if o.is_sweep_override()))


class SweepCallback(Callback):
    def __init__(self, metric: str | None = None) -> None:
        self.metric = metric
        self.ctx = None
        self.node: Any = None
        self._done = False
        self._old_sigterm = None

    # -- start ---------------------------------------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)
        try:
            self._start(config)
        except LabError as exc:  # an unusable tracking store: the message names the URI and the fix
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except Exception as exc:  # Hydra would turn this into a warning and carry on without a parent
            log.error("could not open the sweep's parent run: %s", exc)
            print(f"error: could not open the sweep's parent run: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc

    def _start(self, config: DictConfig) -> None:
        from retrieval_lab.pipeline.tracked import experiment_name

        tracking.quiet_mlflow_environment()
        self.node = config.get("tracking") or {}
        experiment = experiment_name(config)
        self.metric = self.metric or OmegaConf.select(config, "sweep.metric", default="ndcg_at_10")
        tracking.check_store(self.node)  # before any configuration runs: a clear error, not a traceback per job
        client = tracking.client(self.node)
        # The store and the experiment exist before joblib workers start (a fresh SQLite DB raced by several
        # workers fails its schema migration).
        experiment_id = tracking.ensure_experiment(experiment, self.node)
        killed = mark_orphans(client, experiment_id)
        if killed:
            print(f"[sweep] marked {len(killed)} orphaned RUNNING run(s) of a killed sweep as KILLED")

        study = study_name(config)
        sweep_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        state_dir = Path(str(config.hydra.sweep.dir)).resolve() / ".sweep" / sweep_id
        state_dir.mkdir(parents=True, exist_ok=True)
        total = count_jobs(config)
        version = source_revision()
        dataset_name, dataset_hash = self._dataset_identity(config)
        overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        sweep_params = dict(OmegaConf.select(config, "hydra.sweeper.params", default={}) or {})
        tags = {"role": "sweep", "sweep_id": sweep_id, "study": study, "git_commit": version,
                "code_version": version, "dataset": dataset_name, "dataset_hash": dataset_hash,
                "metric": self.metric, "host": host(), "pid": str(os.getpid()),
                "overrides": " ".join(overrides)[:4000],
                "launcher": str(OmegaConf.select(config, "hydra.runtime.choices.hydra/launcher", default="basic")),
                "mlflow.runName": f"sweep {study} {sweep_id[:15]}"}
        parent = client.create_run(experiment_id, run_name=tags["mlflow.runName"], tags=tags)
        from mlflow.entities import Param

        params = [Param(f"sweep.{str(k).lstrip('+~')}", str(v)[:6000]) for k, v in sweep_params.items()]
        params.append(Param("sweep.configs", str(total)))
        client.log_batch(parent.info.run_id, params=params)

        self.ctx = SweepContext(sweep_id=sweep_id, parent_run_id=parent.info.run_id, experiment_id=experiment_id,
                                experiment=experiment, study=study, state_dir=str(state_dir), total=total,
                                started=time.time(), source_revision=version, keys=",".join(swept_keys(config)),
                                tracking_uri=tracking.tracking_uri(self.node))
        os.environ.update(self.ctx.to_env())
        os.environ["RETRIEVAL_LAB_SWEEP_METRIC"] = self.metric
        atexit.register(self._finalize, "exit")
        try:
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        except ValueError:  # not the main thread
            pass
        print(f"[sweep {study}] {total or '?'} configs; parent run {parent.info.run_id} in experiment "
              f"'{experiment}' ({tracking.tracking_uri(self.node)})", flush=True)

    @staticmethod
    def _dataset_identity(config: DictConfig) -> tuple[str, str]:
        name = str(OmegaConf.select(config, "dataset.name", default="?"))
        if any(key == "dataset" or key.startswith("dataset.") for key in swept_keys(config)):
            return "several", "several"
        try:
            dataset = load_dataset(config.dataset, cache_root=OmegaConf.select(config, "cache.dir"))
            return dataset.name, dataset.fingerprint[:16]
        except Exception as exc:  # the jobs will report the error, one per configuration
            log.warning("dataset not loadable for the parent's tags: %s", exc)
            return name, "unknown"

    # -- end -----------------------------------------------------------------------------------------------------
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        status = self._finalize("end")
        if status == "FAILED":  # failed configurations return instead of raising: the exit code says it here
            raise SystemExit(1)

    def _finalize(self, how: str) -> str | None:
        """End the parent run, print the summary and the leaderboard; returns the parent's final status."""
        if self._done or self.ctx is None:
            return None
        self._done = True
        maybe_fault("sweep_end")

        ctx = self.ctx
        client = tracking.client(self.node)
        records = read_records(ctx.state_dir)
        failed = [r for r in records if r.status == "failed"]
        if failed:
            status = "FAILED"
        elif how == "end" or (ctx.total and len(records) >= ctx.total):
            status = "FINISHED"
        else:
            status = "KILLED"  # interrupted (Ctrl-C, SIGTERM) before every configuration ran
        metric = self.metric or "ndcg_at_10"
        board = ""
        try:
            rows = collect_rows(client, records, metric)
            rec, why = recommendation_of(rows, metric)
            board = console_leaderboard(rows, metric, rec=rec, why=why)
            write_parent_report(client, ctx, records, metric, rows, rec, why)
        except Exception as exc:  # the status below matters more than the report
            log.warning("parent report failed: %s", exc)
            print(f"warning: sweep report failed: {exc}", file=sys.stderr)
        finally:
            client.set_tag(ctx.parent_run_id, "configs_failed", str(len(failed)))
            client.set_terminated(ctx.parent_run_id, status)
            for key in list(os.environ):
                if key.startswith("RETRIEVAL_LAB_SWEEP_"):
                    del os.environ[key]
            if self._old_sigterm is not None:
                try:
                    signal.signal(signal.SIGTERM, self._old_sigterm)
                except ValueError:
                    pass
        done = len(records)
        print(f"[sweep {ctx.study}] {status}: {done}/{ctx.total or done} configs "
              f"({sum(r.status == 'skipped' for r in records)} resumed, {len(failed)} failed); parent run "
              f"{ctx.parent_run_id}", flush=True)
        if board:
            print(board, flush=True)
        for r in failed:
            print(f"  failed: {r.run_name}: {(r.error or '').splitlines()[0] if r.error else ''}", file=sys.stderr,
                  flush=True)
        if status == "FINISHED":
            print(f"  next: retrieval-lab best --experiment {ctx.experiment} --metric {metric}  |  "
                  f"retrieval-lab ui --experiment {ctx.experiment}", flush=True)
        return status


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)
