"""One configuration evaluated and logged: the one path `run`, each sweep job and `evaluate` take.

It lives in the pipeline, the lowest layer that sees both the evaluation (`run_experiment`) and the tracking store,
and that knows what a composed config means for a run: the experiment it is logged under (from the dataset's name),
the config groups no stage used (left out of the params), whether the questions are synthetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from retrieval_lab.data import Dataset, dataset_name
from retrieval_lab.data.synth import synthetic_info
from retrieval_lab.pipeline.build import unused_config_groups
from retrieval_lab.pipeline.experiment import Outcome, run_experiment
from retrieval_lab.tracking import check_store, log_run


@dataclass
class Tracked:
    """An evaluated configuration and the MLflow run it was logged as (None: not logged)."""

    outcome: Outcome
    run_id: str | None


def evaluate_and_log(cfg: DictConfig, log: bool = True, dataset: Dataset | None = None,
                     tags: dict[str, str] | None = None, run_id: str | None = None, run_name: str | None = None,
                     before_logging: Callable[[Outcome], dict[str, str] | None] | None = None) -> Tracked:
    """Evaluate `cfg` (over `dataset` when given, else the config's) and, with `log`, log it to MLflow.

    A new run's store is checked before any work (a store that cannot take the run fails in seconds, not after the
    pipeline); an open `run_id` (a sweep job's) was checked when it was opened. `before_logging(outcome)` runs
    between the evaluation and the logging (to print, or to add metrics to the outcome) and returns more tags."""
    if log and run_id is None:
        check_store(cfg.get("tracking"))
    outcome = run_experiment(cfg, dataset=dataset)
    more_tags = before_logging(outcome) if before_logging is not None else None
    if not log:
        return Tracked(outcome, None)
    logged = log_outcome(cfg, outcome, tags={**(tags or {}), **(more_tags or {})}, run_id=run_id, run_name=run_name)
    return Tracked(outcome, logged)


def log_outcome(cfg: DictConfig, outcome: Outcome, tags: dict[str, str] | None = None,
                extra_artifacts: dict[str, str] | None = None, run_id: str | None = None,
                run_name: str | None = None) -> str:
    """Log one evaluated configuration as an MLflow run (a new one, or the open `run_id`) in `experiment_name(cfg)`;
    returns the run id. A new run is named `run_name`, else `tracking.run_name`."""
    more: dict[str, str] = {}
    synthetic = synthetic_info(outcome.dataset)
    if synthetic is not None:  # `best` warns under a leaderboard of synthetic questions
        more.update({"eval_set": "synthetic", "synth_generator": str(synthetic.get("generator"))})
    more.update(tags or {})
    return log_run(cfg.get("tracking") or {}, experiment_name(cfg), outcome, resolved_config(cfg),
                   logged_params_config(cfg), tags=more, extra_artifacts=extra_artifacts, run_id=run_id,
                   run_name=run_name)


def experiment_name(cfg: DictConfig) -> str:
    """`tracking.experiment`, else the dataset's name (with `dataset.path`, the name of the folder it points at).
    `{dataset}` in tracking.experiment stands for that name, so a study logs where its data says
    (`own-docs-{dataset}`: own-docs-r_manuals, or own-docs-my_docs with dataset.path=my_docs)."""
    node = cfg.get("tracking") or {}
    name = dataset_name(cfg.dataset)
    return str(node.get("experiment") or name).replace("{dataset}", name)


def resolved_config(cfg: DictConfig) -> dict:
    """The config as it ran; `dataset.name` is the name the runs are logged under (with `dataset.path` to another
    folder than the option's own, that folder's: an export of a run on your documents names your documents)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    if isinstance(data.get("dataset"), dict) and data["dataset"].get("name") is not None:
        data["dataset"]["name"] = dataset_name(cfg.dataset)
    return data


def logged_params_config(cfg: DictConfig) -> dict:
    """The resolved config minus groups no stage used (the embedder of a BM25 run); config.yaml keeps them all."""
    data = resolved_config(cfg)
    for group in unused_config_groups(cfg):
        data.pop(group, None)
    return data
