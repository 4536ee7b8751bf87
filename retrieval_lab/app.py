"""The Hydra application behind `retrieval-lab run` (one configuration) and `retrieval-lab sweep` (multirun)."""
from __future__ import annotations

import sys

import hydra
from hydra.core.plugins import Plugins
from hydra_plugins.retrieval_lab_launchers.ray_launcher import RayLauncher
from omegaconf import DictConfig

from retrieval_lab import tracking
from retrieval_lab.errors import LabError
from retrieval_lab.paths import conf_dir
from retrieval_lab.pipeline.tracked import evaluate_and_log, experiment_name
from retrieval_lab.sweep.job import run_sweep_job
from retrieval_lab.sweep.state import SweepContext

# `hydra/launcher=ray`: Hydra finds plugins by scanning the hydra_plugins package, which misses the lab's launcher in
# an editable install (setuptools' import hook lists no modules); registering it by hand works in both cases.
Plugins.instance().register(RayLauncher)


def run_job(cfg: DictConfig) -> float:
    """Evaluate one configuration, log it to MLflow, print the summary; returns nDCG@10 for optimizing sweepers."""
    tracked = cfg.tracking.get("enabled", True)
    run_name = (cfg.tracking.get("run_name") or _run_name()) if tracked else None
    result = evaluate_and_log(cfg, log=tracked, run_name=run_name)
    print(tracking.summary_table(result.outcome))
    if result.run_id:
        print(f"  mlflow run     {result.run_id} in experiment '{experiment_name(cfg)}' ({tracking.tracking_uri(cfg.tracking)})")
    return result.outcome.evaluation.means.get("ndcg_at_10", 0.0)


def _run_name() -> str:
    """What this run's command line changed (`retriever=bm25 k1=1.2`), as sweeps name their runs."""
    from hydra.core.hydra_config import HydraConfig

    from retrieval_lab.sweep.state import run_name_of_run

    return run_name_of_run(list(HydraConfig.get().overrides.task))


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def main(cfg: DictConfig) -> float:
    sweep = SweepContext.from_env()
    if sweep is not None:  # a configuration of `retrieval-lab sweep`: child run of the sweep's parent, resumable
        return run_sweep_job(cfg, sweep)
    try:
        return run_job(cfg)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
