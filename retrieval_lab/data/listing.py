"""What `retrieval-lab data list` shows: every dataset under the data root (BEIR sets, imports of a user's documents,
synthetic question sets) with its documents, its questions and where they come from."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from retrieval_lab.data.beir import available_splits, find_corpus_file, load_corpus, load_qrels, load_queries
from retrieval_lab.data.named import changed_files, dataset_options, import_manifest
from retrieval_lab.errors import LabError


@dataclass
class DatasetRow:
    name: str
    docs: str
    questions: str
    what: str


def dataset_rows(root: Path) -> list[DatasetRow]:
    options = dataset_options()
    rows = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and any((p / f).exists() for f in ("corpus.jsonl", "corpus.jsonl.gz")))
    for folder in folders:
        try:
            rows.append(_row(folder, _option_for(folder, options)))
        except LabError as exc:
            rows.append(DatasetRow(folder.name, "-", "-", f"unreadable: {str(exc).splitlines()[0]}"))
    return rows


def _option_for(folder: Path, options: dict[str, dict]) -> dict | None:
    """The `dataset=NAME` option that loads this folder (`<root>/<name>`, no path of its own), if any."""
    option = options.get(folder.name)
    if option is None or option.get("path"):
        return None
    recorded = str(option.get("root") or "")
    if recorded and not recorded.startswith("$"):
        try:
            if Path(recorded).expanduser().resolve() != folder.parent.resolve():
                return None
        except OSError:
            return None
    return option


def _row(folder: Path, option: dict | None) -> DatasetRow:
    docs = f"{len(load_corpus(find_corpus_file(folder))):,}"
    notes = []
    questions_file = Path(str(option["questions"])) if option and option.get("questions") else None
    manifest = import_manifest(folder)
    if questions_file is not None:
        questions = _count_questions(questions_file)
        notes.append(f"questions {questions_file}")
    elif (folder / "queries.jsonl").exists():
        splits = []
        for split in available_splits(folder):
            qrels = load_qrels(folder / "qrels" / f"{split}.tsv")
            splits.append(f"{split}: {len(qrels)} q / {sum(len(d) for d in qrels.values())} qrels")
        questions = f"{len(load_queries(folder / 'queries.jsonl')):,}"
        notes.append("splits " + "; ".join(splits) if splits else "no qrels")
    else:
        questions = "0"
    synth = folder / "synth.json"
    if synth.exists():
        try:
            info = json.loads(synth.read_text(encoding="utf-8"))
            notes.insert(0, f"synthetic: {info.get('generator')} questions over {info['source']['dataset']}")
        except (OSError, ValueError, KeyError):
            pass
    if manifest is not None:
        include = manifest.get("include")
        source = f"documents of {manifest.get('source')}" + (f" ({', '.join(include)})" if include else "")
        if manifest.get("source") and Path(manifest["source"]).is_dir() and changed_files(manifest):
            source += ", changed since the import: imported again by the next run"
        elif manifest.get("source") and not Path(manifest["source"]).is_dir():
            source += ", folder gone: the imported copy is used"
        notes.insert(0, source)
        if questions == "0":
            notes.append(f"no questions yet: retrieval-lab data import {manifest.get('source')} --name "
                         f"{folder.name} --questions FILE, or write some with `data synth` / `judge`")
    if option is None:
        notes.append(f"no dataset={folder.name} option: run it with dataset.name={folder.name}"
                     + (f" (or import again to register one)" if manifest is not None else ""))
    return DatasetRow(folder.name, docs, questions, "; ".join(notes))


def _count_questions(path: Path) -> str:
    from retrieval_lab.data.question_file import read_questions

    if not path.is_file():
        return "missing"
    try:
        return f"{len(read_questions(path, require_gold=False)):,}"
    except LabError as exc:
        return f"unreadable ({str(exc).splitlines()[0][:60]})"
