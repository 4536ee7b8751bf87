"""`retrieval-lab init DIR [--questions Q]`: a one-command start for a folder of documents.

It checks the folder (formats, twins of one document in two formats, skipped and unreadable files, text repeated on
most pages, size), imports it as a named dataset (`dataset=NAME`, data/named.py), writes a study sized for the corpus
into the personal config folder (`experiments/NAME.yaml`: chunkings no longer than the documents, the section unit
only where documents have sections, MiniLM only when encoding every chunking fits the time budget) and prints the next
two commands. Without questions it points to `data synth` (questions generated from the documents, to start) and
`judge` (questions people ask, judged on a local page).
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retrieval_lab.errors import LabError

# A stem in several formats is one document twice: keep the format whose structure the importer reads best.
FORMAT_PREFERENCE = ("html", "markdown", "text", "pdf")
SUFFIXES = {"html": ("*.html", "*.htm"), "markdown": ("*.md", "*.markdown"), "text": ("*.txt",), "pdf": ("*.pdf",)}
TOKENS_PER_WORD = 1.3  # WordPiece tokens per English word, roughly (BERT-style tokenizers)
CHUNKINGS = (("tokens64", 64), ("tokens128", 128), ("tokens256", 256))  # conf/chunking/: chunk sizes in tokens
SENTENCE_CHUNKINGS = ("sentences", "recursive")
SHORT_DOCUMENT_TOKENS = 96  # median document shorter than this: documents are the passages (chunker none)
ENCODE_BUDGET_S = 300.0  # MiniLM-L6 joins the study when encoding every chunking's passages is expected under this
MINILM_PASSAGES_PER_S = 25.0  # the low end measured on 2 cores (FIELD-NOTES: 25-60 passages/s, 100-160 tokens)
SYNTH_QUESTIONS = 40


@dataclass
class FolderCheck:
    formats: dict[str, int] = field(default_factory=dict)  # format -> files
    twins: dict[str, int] = field(default_factory=dict)  # format left out -> files that are twins of kept ones
    include: list[str] | None = None
    documents: int = 0
    characters: int = 0
    median_tokens: float = 0.0
    total_tokens: float = 0.0
    sectioned: int = 0  # documents with more than one section


def choose_include(folder: Path) -> tuple[list[str] | None, dict[str, int], dict[str, int]]:
    """Include globs that leave out a format whose files are mostly twins (same path without suffix) of files in a
    preferred format, as the R manuals ship each manual as .html and .pdf; None: every supported file."""
    from retrieval_lab.data.folder import FORMATS, scan

    stems: dict[str, set[str]] = {}
    formats: dict[str, int] = {}
    for rel, path in scan(folder):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            other = path.suffix.lower() or "(no suffix)"
            formats[f"other {other}"] = formats.get(f"other {other}", 0) + 1
            continue
        formats[fmt] = formats.get(fmt, 0) + 1
        stems.setdefault(fmt, set()).add(rel[: -len(path.suffix)])
    twins: dict[str, int] = {}
    kept = [f for f in FORMAT_PREFERENCE if f in formats]  # formats["other .png"]: files that are not imported
    for fmt in list(kept):
        better = set().union(*(stems[f] for f in kept if FORMAT_PREFERENCE.index(f) < FORMAT_PREFERENCE.index(fmt)))
        shared = len(stems[fmt] & better)
        if shared and shared * 2 >= len(stems[fmt]):
            twins[fmt] = shared
            kept.remove(fmt)
    if not twins:
        return None, formats, twins
    return [glob for fmt in kept for glob in SUFFIXES[fmt]], formats, twins


def measure(corpus_file: Path, check: FolderCheck) -> None:
    """Size and sections of the imported corpus (the import itself cuts and reports repeated lines)."""
    import json

    lengths = []
    for line in corpus_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        text = record["text"]
        check.documents += 1
        check.characters += len(text)
        lengths.append(len(text.split()) * TOKENS_PER_WORD)
        sections = (record.get("metadata") or {}).get("sections") or []
        check.sectioned += len(sections) > 1
    check.median_tokens = statistics.median(lengths) if lengths else 0.0
    check.total_tokens = sum(lengths)


@dataclass
class StudyPlan:
    chunkings: list[str]  # +chunking options; empty: chunker none (documents are the passages)
    units: list[str]
    pipelines: list[str]
    metric: str
    notes: list[str]


def plan_study(check: FolderCheck, has_evidence: bool) -> StudyPlan:
    notes = []
    if check.median_tokens < SHORT_DOCUMENT_TOKENS:
        chunkings, units = [], ["document"]
        notes.append(f"documents are short (median ~{check.median_tokens:.0f} tokens): each document is one passage "
                     "(chunker none), so chunkers are not swept")
    else:
        chunkings = [name for name, size in CHUNKINGS if size <= max(check.median_tokens, 64)]
        chunkings += list(SENTENCE_CHUNKINGS)
        units = ["chunk", "window"] + (["section"] if check.sectioned else []) + ["document"]
        left = [name for name, size in CHUNKINGS if name not in chunkings]
        if left:
            notes.append(f"{', '.join(left)} left out: longer than the median document (~{check.median_tokens:.0f} "
                         "tokens)")
        if not check.sectioned:
            notes.append("no document has sections (headings): the section unit is left out")
    pipelines = ["bm25", "dense_wordllama", "hybrid_wordllama"]
    passages = sum(check.total_tokens / size for name, size in CHUNKINGS if name in chunkings)
    passages += check.total_tokens / 100 * sum(name in chunkings for name in SENTENCE_CHUNKINGS)
    passages = passages or check.documents
    encode_s = passages / MINILM_PASSAGES_PER_S
    if encode_s <= ENCODE_BUDGET_S:
        pipelines += ["dense_minilm_l6", "hybrid_minilm_l6"]
        notes.append(f"MiniLM-L6 included: encoding ~{passages:,.0f} passages takes ~{encode_s / 60:.0f} min on 2 "
                     "cores, once (cached)")
    else:
        notes.append(f"MiniLM-L6 left out: encoding ~{passages:,.0f} passages would take ~{encode_s / 60:.0f} min on "
                     "2 cores (to include it, add dense_minilm_l6,hybrid_minilm_l6 to +pipeline in the study)")
    metric = "evidence_coverage_budget_512" if has_evidence else "ndcg_at_10"
    return StudyPlan(chunkings, units, pipelines, metric, notes)


def synth_questions(corpus_file: Path, wanted: int = SYNTH_QUESTIONS) -> int:
    """How many questions `data synth --generator extract` (seed 0) makes from the corpus, up to `wanted`: it needs
    sentence windows with enough key terms, which a small corpus has few of."""
    import numpy as np

    from retrieval_lab.data.beir import load_corpus
    from retrieval_lab.data.synth import make_generator
    from retrieval_lab.data.synth.base import TooFewQuestions

    try:
        make_generator("extract").generate(load_corpus(corpus_file), wanted, np.random.default_rng(0))
    except TooFewQuestions as exc:
        return exc.possible
    return wanted


def study_text(name: str, source: Path, check: FolderCheck, plan: StudyPlan) -> str:
    configs = max(len(plan.chunkings), 1) * len(plan.units) * len(plan.pipelines)
    header = [
        "# @package _global_",
        f"# Written by `retrieval-lab init {source}`: {check.documents} documents, ~{check.total_tokens:,.0f} tokens "
        f"(median document ~{check.median_tokens:.0f}).",
        f"# `retrieval-lab sweep {name}`: {configs} configurations; edit freely (it is yours). " + " ".join(
            f"{n[0].upper()}{n[1:]}." for n in plan.notes),
    ]
    params = {}
    if plan.chunkings:
        params["+chunking"] = ",".join(plan.chunkings)
    if len(plan.units) > 1:
        params["unit"] = ",".join(plan.units)
    params["+pipeline"] = ",".join(plan.pipelines)
    body: dict = {"defaults": [{"override /dataset": name}]}
    if not plan.chunkings:
        body["defaults"].append({"override /chunker": "none"})
        body["defaults"].append({"override /unit": plan.units[0]})
    body["tracking"] = {"experiment": "{dataset}-sweep"}
    body["sweep"] = {"metric": plan.metric}
    body["hydra"] = {"sweeper": {"params": params}}
    return "\n".join(_wrap(header)) + "\n" + yaml.safe_dump(body, sort_keys=False, width=120)


def _wrap(lines: list[str], width: int = 118) -> list[str]:
    out = []
    for line in lines:
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            out.append(line[:cut])
            line = "# " + line[cut + 1:]
        out.append(line)
    return out


def cmd_init(args) -> int:
    from retrieval_lab.data import data_root
    from retrieval_lab.data.beir import find_corpus_file
    from retrieval_lab.data.named import NAME, import_named
    from retrieval_lab.data.question_file import read_questions
    from retrieval_lab.paths import personal_config_dir

    folder = Path(args.folder).expanduser().resolve()
    if not folder.is_dir():
        raise LabError(f"{folder}: not a folder\n  fix: give the folder holding your documents (.html, .md, .txt, "
                       ".pdf)")
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name).strip("._-") or "docs"
    if not NAME.match(name):
        raise LabError(f"--name {name!r}: not a dataset name\n  fix: use letters, digits, '_', '-' and '.'")
    personal = personal_config_dir()
    study = personal / "experiments" / f"{name}.yaml"
    if study.exists() and not args.force:
        raise LabError(f"{study} already exists\n  fix: choose another --name, or --force to write it again")
    from retrieval_lab.paths import experiments_dir

    if (experiments_dir() / f"{name}.yaml").exists():
        raise LabError(f"--name {name}: a shipped study has that name\n  fix: choose another --name")
    has_evidence = True  # without questions, the next step generates some, each with its evidence
    if args.questions:
        rows = read_questions(Path(args.questions).expanduser(), require_gold=False)
        has_evidence = any(row.quotes or row.spans for row in rows)

    include, formats, twins = choose_include(folder)
    # the dataset option beside the study, in the personal config folder: both are the user's to edit
    result = import_named(folder, name, data_root(args.root), personal, include=include, questions=args.questions)
    report = result.report
    if args.questions:  # every question must resolve in the imported documents before a study is written
        from retrieval_lab.data import load_dataset

        load_dataset(report.dest, name=name, questions=Path(args.questions).expanduser())
    check = FolderCheck(formats=formats, twins=twins, include=include)
    measure(find_corpus_file(report.dest), check)
    plan = plan_study(check, has_evidence)
    study.parent.mkdir(parents=True, exist_ok=True)
    study.write_text(study_text(name, folder, check, plan), encoding="utf-8")

    documents = {fmt: n for fmt, n in formats.items() if not fmt.startswith("other ")}
    others = {fmt.removeprefix("other "): n for fmt, n in formats.items() if fmt.startswith("other ")}
    print(f"{folder}: " + ", ".join(f"{n} {fmt}" for fmt, n in sorted(documents.items())) + " files"
          + (f"; {sum(others.values())} of other formats skipped ("
             + ", ".join(f"{fmt} {n}" for fmt, n in sorted(others.items())) + ")" if others else ""))
    for fmt, n in twins.items():
        print(f"  left out the {formats[fmt]} {fmt} files: {n} of them are the same documents as "
              f"{', '.join(include)} files (one document twice splits its relevance in two); to change it: "
              f"retrieval-lab data import {folder} --name {name} --include GLOB [--questions FILE]")
    for path, reason in report.skipped:
        print(f"  unreadable, skipped: {path}: {reason}")
    print(f"  imported {check.documents} documents, {check.characters:,} characters (~{check.total_tokens:,.0f} "
          f"tokens; median document ~{check.median_tokens:.0f}) into {report.dest}")
    if report.boilerplate is not None:
        print(f"  {report.boilerplate.line()}")
    print(f"dataset option: dataset={name} ({result.option})")
    print(f"study: {study}")
    for note in plan.notes:
        print(f"  {note}")
    print("next:")
    if args.questions:
        print(f"  retrieval-lab sweep {name}")
        print(f"  retrieval-lab best --experiment {name}-sweep --metric {plan.metric} --export best.yaml")
    else:
        synth = f"{name}-synth"
        count = synth_questions(find_corpus_file(report.dest))
        if count == 0:
            print("  the documents give no synthetic questions (too little text): write a few questions with the "
                  'sentence that answers each ({"question": ..., "evidence": ["..."]}, one per line), then:')
            print(f"  retrieval-lab init {folder} --name {name} --questions YOUR_QUESTIONS.jsonl --force")
            return 0
        if count < SYNTH_QUESTIONS:
            print(f"  the documents give {count} synthetic questions, not {SYNTH_QUESTIONS}: too few to rank "
                  "configurations on; questions people ask (judge, below) matter all the more")
        print(f"  retrieval-lab data synth --dataset {name} --generator extract --queries {count} --out {synth}")
        print(f"  retrieval-lab sweep {name} dataset={synth}")
        print("  synthetic questions favour words copied from the text: confirm with questions people ask. Write them "
              "in a .jsonl ({\"question\": ...}), then judge what the study retrieves for them:")
        print(f"  retrieval-lab judge --experiment {synth}-sweep --questions YOUR_QUESTIONS.jsonl")
    return 0
