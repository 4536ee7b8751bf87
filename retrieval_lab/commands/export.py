"""Frozen configurations: export a run as best.yaml, load it back safely, search and evaluate with it.

An export holds the run's resolved `config.yaml` (as logged), the identity of every model-bearing stage (names,
weight hashes), the dataset's name, split and content hash, the metrics the run reached, its run id and code
version. Loading uses `yaml.safe_load` only and instantiates nothing but retrieval-lab components: a config naming
any `_target_` outside `retrieval_lab` is refused. Nothing is unpickled.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from retrieval_lab.errors import ConfigError, LabError

log = logging.getLogger(__name__)

FORMAT = "retrieval-lab/export-v1"
SAFE_TARGET_PREFIX = "retrieval_lab."


class UnsafeConfigError(ConfigError):
    """A loaded config names code outside retrieval-lab."""


def check_targets(data: Any, where: str = "config") -> None:
    """Refuse any `_target_` (or Hydra-style callable reference) outside the retrieval_lab package."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}"
            if key in ("_target_", "_partial_target_", "_callable_") or (isinstance(key, str) and key.startswith("_target")):
                if not (isinstance(value, str) and value.startswith(SAFE_TARGET_PREFIX)):
                    raise UnsafeConfigError(path, f"refusing to instantiate {value!r}: only retrieval_lab "
                                                  "components may be named in a loaded config",
                                            "remove this key; exports never need code from other packages")
            check_targets(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_targets(value, f"{where}[{i}]")


def stage_identities(cfg: DictConfig) -> list[dict]:
    """What every model-bearing stage is (model name, weight hash, settings), as the cache keys see it."""
    from retrieval_lab.cache import Cache
    from retrieval_lab.pipeline import FIRST_STAGES, read_config
    from retrieval_lab.rerank import make_scorer

    settings = read_config(cfg)
    out = []
    for spec in settings.first_stages:
        stage = FIRST_STAGES[spec.node.name](spec.node, cfg, Cache(enabled=False), spec.key)
        out.append({"key": spec.key, **_plain(getattr(stage, "identity", {}))})
    if settings.reranker.active:
        try:
            scorer = make_scorer(settings.reranker, None, False)
            out.append({"key": "reranker", **_plain(scorer.identity)})
        except Exception as exc:  # the export still names the model in `config`
            log.warning("no identity for the reranker: %s", exc)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def export_run(client, run_id: str, path: Path, selection: dict | None = None) -> Path:
    from retrieval_lab.sweep.job import load_dataset

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, "config.yaml", tmp)
        except Exception as exc:
            raise LabError(f"run {run_id} has no config.yaml artifact ({exc})") from exc
        config = yaml.safe_load(Path(local).read_text())
    check_targets(config)
    cfg = OmegaConf.create(config)
    dataset = load_dataset(cfg.dataset)
    logged_hash = run.data.tags.get("dataset_hash", "")
    if logged_hash and not dataset.fingerprint.startswith(logged_hash):
        raise LabError(f"the dataset at {dataset.path} differs from the one run {run_id} was evaluated on "
                       f"(hash {dataset.fingerprint[:16]} != {logged_hash}): cannot freeze its identity")
    export = {
        "format": FORMAT,
        "run_id": run_id,
        "experiment": client.get_experiment(run.info.experiment_id).name,
        "run_name": run.info.run_name,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code_version": run.data.tags.get("code_version") or run.data.tags.get("git_commit"),
        "config_hash": run.data.tags.get("config_hash"),
        "selection": _plain(selection or {}),
        "dataset": {"name": dataset.name, "split": dataset.split, "hash": dataset.fingerprint,
                    "documents": len(dataset.corpus), "queries": len(dataset.queries)},
        "metrics": {k: float(v) for k, v in sorted(run.data.metrics.items())},
        "models": stage_identities(cfg),
        "config": config,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# retrieval-lab frozen configuration (retrieval-lab best --export).\n"
              f"# search:   retrieval-lab search --config {path.name} \"query\"\n"
              f"# python:   retrieval_lab.load_retriever(\"{path.name}\").search(\"query\")\n"
              f"# evaluate: retrieval-lab evaluate --config {path.name} [dataset=nfcorpus]\n")
    path.write_text(header + yaml.safe_dump(export, sort_keys=False, allow_unicode=True, width=120))
    return path


def read_export(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise LabError(f"{path}: no such file (write one with `retrieval-lab best --experiment NAME --export {path}`)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise LabError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise LabError(f"{path}: expected a mapping")
    if "config" not in data:  # a plain resolved config.yaml (e.g. an MLflow artifact) is accepted as well
        data = {"format": None, "config": data}
    if not isinstance(data["config"], dict):
        raise LabError(f"{path}: 'config' must be a mapping")
    check_targets(data["config"], "config")
    check_targets({k: v for k, v in data.items() if k != "config"}, "export")
    return data


def apply_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """`group=option` swaps a whole stage config from conf/<group>/<option>.yaml; `a.b=value` sets one value."""
    from retrieval_lab.paths import conf_dir

    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "expected key=value")
        key, raw = item.split("=", 1)
        key = key.lstrip("+")
        group_file = conf_dir() / key / f"{raw}.yaml"
        if "." not in key and group_file.exists():
            node = OmegaConf.load(group_file)
            check_targets(OmegaConf.to_container(node))
            cfg[key] = node
            continue
        value = yaml.safe_load(raw) if raw else None
        check_targets(value, key)
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg


def config_from_export(export: dict, overrides: list[str] = ()) -> DictConfig:
    from retrieval_lab.data import data_root, dataset_folder

    cfg = OmegaConf.create(export["config"])
    cfg = apply_overrides(cfg, list(overrides))
    # Where data and cache live does not change results: follow this machine when the recorded places are gone.
    if cfg.get("dataset") is not None and not cfg.dataset.get("path"):
        _, folder = dataset_folder(cfg.dataset)
        if not folder.exists():
            cfg.dataset.root = str(data_root())
    if cfg.get("tracking") is not None:  # log where this machine logs ($MLFLOW_TRACKING_URI or ./mlruns)
        cfg.tracking.uri = None
        cfg.tracking.root = "mlruns"
    if cfg.get("cache") is not None:
        recorded = cfg.cache.get("dir")
        if not recorded or not Path(str(recorded)).exists():
            cfg.cache.dir = os.environ.get("RETRIEVAL_LAB_CACHE")
    check_targets(OmegaConf.to_container(cfg, resolve=True))
    return cfg


def load_retriever(path: str | Path, overrides: list[str] = ()):
    """The frozen configuration as a ready `Retriever` over its dataset's corpus: `.search("query", k=10)`."""
    from retrieval_lab.pipeline import Retriever
    from retrieval_lab.sweep.job import load_dataset

    export = read_export(path)
    cfg = config_from_export(export, overrides)
    dataset = load_dataset(cfg.dataset)
    recorded = (export.get("dataset") or {}).get("hash")
    if recorded and not overrides and dataset.fingerprint != recorded:
        log.warning("dataset %s differs from the one the export was evaluated on (hash %s, recorded %s)",
                    dataset.name, dataset.fingerprint[:16], recorded[:16])
    retriever = Retriever(cfg, dataset.corpus)
    retriever.export = export
    return retriever


def cmd_search(args) -> int:
    retriever = load_retriever(args.config, args.overrides)
    hits = retriever.search(args.query, k=args.k)
    if not hits:
        print("no document matched")
        return 1
    width = os.get_terminal_size().columns if os.isatty(1) else 100
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>3}. {hit['doc_id']}  score {hit['score']:.4f}  {hit.get('title') or ''}"[:width])
        text = " ".join(str(hit.get("passage", "")).split())
        limit = args.chars
        print(f"     {text[:limit]}{'...' if len(text) > limit else ''}")
    return 0


def cmd_evaluate(args) -> int:
    from retrieval_lab import tracking
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment

    export = None
    if args.config:
        export = read_export(args.config)
        cfg = config_from_export(export, args.overrides)
    else:
        cfg = compose_config(args.overrides)
    outcome = run_experiment(cfg)
    print(tracking.summary_table(outcome))
    if export and export.get("metrics") and (export.get("dataset") or {}).get("hash") == outcome.dataset.fingerprint:
        diffs = {k: outcome.evaluation.means[k] - v for k, v in export["metrics"].items() if k in outcome.evaluation.means}
        worst = max((abs(v) for v in diffs.values()), default=0.0)
        state = "identical" if worst == 0 else f"max difference {worst:.2e}"
        print(f"  vs export      {len(diffs)} metrics of run {export.get('run_id')} reproduced: {state}")
    if args.experiment:
        node = {"experiment": args.experiment}
        OmegaConf.update(cfg, "tracking.experiment", args.experiment, force_add=True)
        tags = {"role": "evaluation", "source_run_id": str((export or {}).get("run_id", ""))}
        run_id = tracking.log_outcome(cfg, outcome, tags=tags)
        print(f"  mlflow run     {run_id} in experiment '{node['experiment']}'")
    return 0
