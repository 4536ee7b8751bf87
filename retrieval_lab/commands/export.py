"""Frozen configurations: export a run as best.yaml, load it back safely, search and evaluate with it.

An export holds the run's resolved `config.yaml` (as logged), the identity of every model-bearing stage (names,
weight hashes), the dataset's name, split and content hash, the metrics the run reached, its run id and code
version. Loading uses `yaml.safe_load` only and instantiates nothing but retrieval-lab components: a config naming
any `_target_` outside `retrieval_lab` is refused. Nothing is unpickled.
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from retrieval_lab import tracking
from retrieval_lab.cache import Cache
from retrieval_lab.config import cache_dirs_in, compose_config, compose_over
from retrieval_lab.data import data_root, dataset_folder
from retrieval_lab.data.places import source_root
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.pipeline import Retriever, read_config, run_experiment
from retrieval_lab.pipeline.build import first_stages
from retrieval_lab.rerank import make_scorer
from retrieval_lab.sweep.job import load_dataset
from retrieval_lab.tracking import flatten

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
    settings = read_config(cfg)
    models = Cache(settings.cache_dir, enabled=False)  # models resolve under the run's cache root, as in the run
    out = []
    for spec, stage in zip(settings.first_stages, first_stages(settings, models)):
        out.append({"key": spec.key, **_plain(stage.identity)})
    if settings.reranker.active:
        try:
            scorer = make_scorer(settings.reranker, models.root, False)
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
              + "".join(f"# evaluate: {hint}\n" for hint in evaluate_hints(path.name, config)))
    path.write_text(header + yaml.safe_dump(export, sort_keys=False, allow_unicode=True, width=120))
    return path


def evaluate_hints(path: str | Path, config: dict) -> list[str]:
    """What to evaluate the export on next, fitting its data: the same run again (it reproduces), then other
    questions over the same documents for a folder or questions file of your own, another BEIR set for a BEIR one."""
    dataset = config.get("dataset") or {}
    again = f"retrieval-lab evaluate --config {path}"
    if dataset.get("questions") or dataset.get("path"):
        return [f"{again}   (reproduces the run)",
                f"{again} dataset.questions=OTHER_QUESTIONS.jsonl   (new questions over the same documents)"]
    other = "nfcorpus" if dataset.get("name") != "nfcorpus" else "scifact"
    return [f"{again}   (reproduces the run)", f"{again} dataset={other}   (another dataset)"]


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


def config_from_export(export: dict, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The export's config composed with `overrides` in the grammar of `retrieval-lab run` (Hydra's): `group=option`
    brings that option with its own defaults (registered models' options are found under `<cache>/conf`),
    `a.b=value` changes one value. Where data, cache and tracking live follows this machine."""

    body = copy.deepcopy(export["config"])
    check_targets(body, "config")
    follow_this_machine(body)
    asked = [d for d in cache_dirs_in(overrides) if d is not None]
    recorded_cache = (body.get("cache") or {}).get("dir")
    cfg = compose_over(body, overrides, asked or [recorded_cache])
    check_targets(OmegaConf.to_container(cfg, resolve=True))
    return cfg


def follow_this_machine(config: dict) -> None:
    """Where data and cache live and where runs are logged do not change results: when the recorded places are gone,
    use this machine's ($RETRIEVAL_LAB_DATA, $RETRIEVAL_LAB_CACHE, $MLFLOW_TRACKING_URI or ./mlruns)."""

    dataset = config.get("dataset")
    if isinstance(dataset, dict) and dataset.get("name") and not dataset.get("path"):
        _, folder = dataset_folder(OmegaConf.create(dataset))
        if not folder.exists():
            dataset["root"] = str(data_root())
    if isinstance(config.get("tracking"), dict):
        config["tracking"]["uri"] = None
        config["tracking"]["root"] = "mlruns"
    if isinstance(config.get("cache"), dict):
        recorded = config["cache"].get("dir")
        if not recorded or not Path(str(recorded)).exists():
            config["cache"]["dir"] = os.environ.get("RETRIEVAL_LAB_CACHE")


# Keys that say where things live, not what the pipeline computes; dataset.path counts only when the data differ.
LOCATION_PREFIXES = ("tracking.", "cache.")
LOCATION_KEYS = ("dataset.root",)
ABSENT = object()  # a key one side of the comparison does not have


@dataclass
class Change:
    key: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.key}: {_shown(self.before)} -> {_shown(self.after)}"


def _shown(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def changes_against_export(export: dict, cfg: DictConfig, dataset_fingerprint: str | None = None) -> list[Change]:
    """Every flattened config key whose value differs from the export's, names (`retriever.name`) first; location
    keys are left out, and `dataset.path` too when the dataset's content is the recorded one (it only moved)."""

    recorded_hash = (export.get("dataset") or {}).get("hash")
    same_data = bool(recorded_hash and dataset_fingerprint and dataset_fingerprint.startswith(recorded_hash))
    before = flatten(export["config"])
    after = flatten(OmegaConf.to_container(cfg, resolve=True))
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key.startswith(LOCATION_PREFIXES) or key in LOCATION_KEYS or (key == "dataset.path" and same_data):
            continue
        old, new = before.get(key, ABSENT), after.get(key, ABSENT)
        if old != new or type(old) is not type(new) and not {type(old), type(new)} <= {int, float}:
            changes.append(Change(key, old, new))
    if recorded_hash and dataset_fingerprint and not same_data:
        changes.append(Change("dataset content (hash)", recorded_hash[:16], dataset_fingerprint[:16]))
    return sorted(changes, key=lambda c: not c.key.endswith(".name"))  # stable: config order within each part


def served_fingerprints(models: list[dict]) -> dict[str, tuple[str, str]]:
    """{stage key: (model name, fingerprint)} of the served models (embedders, rerankers) among stage identities."""
    found = {}

    def walk(node, key):
        if isinstance(node, dict):
            if node.get("served") and node.get("fingerprint"):
                found[key] = (str(node.get("name")), str(node["fingerprint"]))
            for value in node.values():
                walk(value, key)

    for entry in models or []:
        if isinstance(entry, dict):
            walk(entry, str(entry.get("key")))
    return found


def fingerprint_changes(export: dict, cfg: DictConfig) -> list[Change]:
    """A served model that answers the probe texts differently than when the export was made: another model (or
    version) behind the same name. Stage identities probe the servers (once per process)."""
    recorded = served_fingerprints(export.get("models") or [])
    if not recorded:
        return []
    now = served_fingerprints(stage_identities(cfg))
    return [Change(f"{key} served model '{name}' fingerprint", fp, now[key][1])
            for key, (name, fp) in recorded.items() if key in now and now[key][1] != fp]


def comparison_lines(export: dict, changes: list[Change], means: dict[str, float], main_metric: str,
                     shown_keys: int = 6) -> list[str]:
    """What `evaluate --config` says against the export: the changed keys, then either "reproduced" (no key changed
    and every recorded quality metric equal) or the metric differences of the changed pipeline."""
    run = export.get("run_id") or "the export"
    recorded = {k: float(v) for k, v in (export.get("metrics") or {}).items() if k in means}
    diffs = {k: means[k] - v for k, v in recorded.items()}
    differing = {k: d for k, d in diffs.items() if d != 0}
    lines = []
    if changes:
        listed = ", ".join(map(str, changes[:shown_keys]))
        more = f", and {len(changes) - shown_keys} more" if len(changes) > shown_keys else ""
        lines.append(f"  vs export      {len(changes)} key{'s' if len(changes) != 1 else ''} changed against run "
                     f"{run}: {listed}{more}")
    if not recorded:
        lines.append("  vs export      the export records no metrics to compare")
        return lines
    if any(c.key in ("dataset.name", "dataset content (hash)") for c in changes):
        lines.append("  vs export      the evaluated data differ from the export's: metrics not compared")
        return lines
    if not changes and not differing:
        lines.append(f"  vs export      no key changed; {len(recorded)} metrics of run {run} reproduced: identical")
        return lines
    order = sorted(differing, key=lambda k: (k != main_metric, -abs(differing[k])))
    shown = ", ".join(f"{k} {recorded[k]:.4f} -> {means[k]:.4f} ({differing[k]:+.4f})" for k in order[:4])
    worst = max((abs(d) for d in differing.values()), default=0.0)
    if changes:
        summary = (f"{len(differing)} of {len(recorded)} metrics differ (max {worst:.2e})" if differing
                   else f"all {len(recorded)} metrics equal the export's")
        lines.append(f"  changed pipeline  {summary}{': ' + shown if shown else ''}")
    else:  # same config, other numbers: the run does not repeat
        lines.append(f"  vs export      no key changed, yet {len(differing)} of {len(recorded)} metrics differ from "
                     f"run {run} (max {worst:.2e}): {shown}")
    return lines


def load_retriever(path: str | Path, overrides: list[str] = ()):
    """The frozen configuration as a ready `Retriever` over its dataset's corpus: `.search("query", k=10)`."""
    export = read_export(path)
    cfg = config_from_export(export, overrides)
    dataset = load_dataset(cfg.dataset)
    recorded = (export.get("dataset") or {}).get("hash")
    if recorded and not overrides and dataset.fingerprint != recorded:
        log.warning("dataset %s differs from the one the export was evaluated on (hash %s, recorded %s)",
                    dataset.name, dataset.fingerprint[:16], recorded[:16])
    return Retriever(cfg, dataset.corpus, source_root=source_root(dataset.path))


def cmd_search(args) -> int:
    if args.passages < 1:
        raise LabError(f"--passages {args.passages}: must be at least 1 (passages shown per document)")
    retriever = load_retriever(args.config, args.overrides)
    hits = retriever.search(args.query, k=args.k, passages=args.passages)
    if not hits:
        print("no document matched")
        return 1
    print("\n".join(hit_lines(hits, args.chars, os.get_terminal_size().columns if os.isatty(1) else 100)))
    return 0


def hit_lines(hits: list[dict], chars: int = 240, width: int = 100) -> list[str]:
    """What `search` prints per document: rank, id, score and title; then per passage the headings above it, where it
    is (a link to the nearest anchor, or the page) and its text."""
    lines = []
    for rank, hit in enumerate(hits, 1):
        lines.append(f"{rank:>3}. {hit['doc_id']}  score {hit['score']:.4f}  {hit.get('title') or ''}"[:width])
        passages = hit.get("passages") or [hit]
        for i, unit in enumerate(passages):
            indent = "     " if len(passages) == 1 else f"   {chr(ord('a') + i) if i < 26 else '-'}) "
            if unit.get("headings"):
                lines.append(f"{indent}{' > '.join(unit['headings'])}")
                indent = " " * len(indent)
            where = unit.get("source")
            if where:
                page = f", page {where['page']}" if where.get("page") is not None else ""
                lines.append(f"{indent}{unit.get('link') or where['file']}{page}  (offset {where['offset']})")
                indent = " " * len(indent)
            text = " ".join(str(unit.get("passage", "")).split())
            lines.append(f"{indent}{text[:chars]}{'...' if len(text) > chars else ''}")
    return lines


def cmd_evaluate(args) -> int:
    export = None
    if args.config:
        export = read_export(args.config)
        cfg = config_from_export(export, args.overrides)
    else:
        cfg = compose_config(args.overrides)
    if args.experiment:
        tracking.check_store(cfg.get("tracking"))  # before the work, not after it
    outcome = run_experiment(cfg)
    print(tracking.summary_table(outcome))
    changes: list[Change] = []
    if export is not None:
        changes = changes_against_export(export, cfg, outcome.dataset.fingerprint)
        swapped = fingerprint_changes(export, cfg)
        for change in swapped:
            print(f"  vs export      {change}: the server answers the probe texts differently than when this was "
                  "exported; another model (or version) is behind that name")
        changes += swapped
        main_metric = str((cfg.get("sweep") or {}).get("metric") or "ndcg_at_10")
        print("\n".join(comparison_lines(export, changes, outcome.evaluation.means, main_metric)))
    if args.experiment:
        OmegaConf.update(cfg, "tracking.experiment", args.experiment, force_add=True)
        tags = {"role": "evaluation", "source_run_id": str((export or {}).get("run_id", "")),
                "changed_keys": str(len(changes))}
        from retrieval_lab.sweep.state import run_name_of_run

        changed = run_name_of_run(list(args.overrides))
        base = f"{(export or {}).get('run_name') or Path(args.config).name} " if export is not None else ""
        name = base + changed if changed != "default" or not base else base.strip()
        run_id = tracking.log_outcome(cfg, outcome, tags=tags, run_name=cfg.tracking.get("run_name") or name)
        print(f"  mlflow run     {run_id} in experiment '{args.experiment}'")
    return 0
