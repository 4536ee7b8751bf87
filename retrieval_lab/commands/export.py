"""`retrieval-lab search` and `retrieval-lab evaluate`: a frozen configuration (`best --export`) searched, or
evaluated (and logged) again and compared with the run it froze. Exports are written by `best --export` and loaded
by `pipeline.export`."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from retrieval_lab import tracking
from retrieval_lab.config import compose_config
from retrieval_lab.errors import LabError
from retrieval_lab.pipeline.export import (Change, changes_against_export, comparison_lines, config_from_export,
                                           fingerprint_changes, load_retriever, read_export)
from retrieval_lab.pipeline.tracked import evaluate_and_log


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
    run_name = None
    if args.experiment:
        OmegaConf.update(cfg, "tracking.experiment", args.experiment, force_add=True)
        from retrieval_lab.sweep.state import run_name_of_run

        changed = run_name_of_run(list(args.overrides))
        base = f"{(export or {}).get('run_name') or Path(args.config).name} " if export is not None else ""
        name = base + changed if changed != "default" or not base else base.strip()
        run_name = cfg.tracking.get("run_name") or name

    def report(outcome) -> dict[str, str]:
        """The summary and the comparison with the export, printed before the run is logged; the run's tags."""
        print(tracking.summary_table(outcome))
        changes: list[Change] = []
        if export is not None:
            changes = changes_against_export(export, cfg, outcome.dataset.fingerprint)
            swapped = fingerprint_changes(export, cfg)
            for change in swapped:
                print(f"  vs export      {change}: the server answers the probe texts differently than when this "
                      "was exported; another model (or version) is behind that name")
            changes += swapped
            main_metric = str((cfg.get("sweep") or {}).get("metric") or "ndcg_at_10")
            print("\n".join(comparison_lines(export, changes, outcome.evaluation.means, main_metric)))
        return {"role": "evaluation", "source_run_id": str((export or {}).get("run_id", "")),
                "changed_keys": str(len(changes))}

    result = evaluate_and_log(cfg, log=bool(args.experiment), run_name=run_name, before_logging=report)
    if result.run_id:
        print(f"  mlflow run     {result.run_id} in experiment '{args.experiment}'")
    return 0
