"""Write a synthetic dataset: the source corpus, generated questions as a questions file and as BEIR queries and
qrels, `synth.json`, and a dataset option `<cache>/conf/dataset/<name>.yaml` so `dataset=<name>` loads it with its
span gold."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from retrieval_lab.data import load_dataset
from retrieval_lab.data.beir import find_corpus_file, load_corpus
from retrieval_lab.data.synth import SYNTH_FILE, make_generator
from retrieval_lab.data.synth.base import SynthError, SynthQuestion
from retrieval_lab.types import Corpus

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SPLIT = "test"


@dataclass
class SynthResult:
    folder: Path
    option: Path  # the dataset option written for `dataset=<name>`
    questions: list[SynthQuestion]
    info: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        info = self.info
        out = [f"{info['generator']}: wrote {len(self.questions)} questions from {info['source']['dataset']} "
               f"({info['source']['documents']:,} documents) into {self.folder}",
               f"  use it: retrieval-lab run dataset={self.folder.name}   (option {self.option})"]
        usage = info.get("usage")
        if usage:
            out.append(f"  llm: {usage['requests']} requests ({usage['cached']} answers from the cache), "
                       f"{usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens, "
                       f"cost {usage['cost']:.4f} at {usage['price_per_1k_tokens']} per 1k tokens")
        check = info.get("lexical_check")
        if check:
            out.append(f"  lexical check, MRR@10 / nDCG@10 of {check['retriever']}: generated "
                       f"{check['generated']['mrr_at_10']:.3f} / {check['generated']['ndcg_at_10']:.3f}, the source "
                       f"sentence copied {check['copied']['mrr_at_10']:.3f} / {check['copied']['ndcg_at_10']:.3f}")
        for q in self.questions[:3]:
            out.append(f"  e.g. {q.question!r}  <- {q.doc}")
        return out


def source_folder(dataset: str, root: Path) -> Path:
    """`<root>/<dataset>`, or `dataset` as a path to a BEIR folder."""
    for folder in (root / dataset, Path(dataset).expanduser()):
        if folder.is_dir() and any((folder / f).exists() for f in ("corpus.jsonl", "corpus.jsonl.gz")):
            return folder
    raise SynthError(f"--dataset {dataset}: no corpus.jsonl in {root / dataset}",
                     "name a dataset under the data root (`retrieval-lab data list`; --root or $RETRIEVAL_LAB_DATA), "
                     "a BEIR folder, or import documents first (`retrieval-lab data import FOLDER --name NAME`)")


def synthesize(dataset: str, out: str, generator: str, queries: int, seed: int = 0, root: str | Path = "data",
               cache_dir: str | None = None, lexical_check: bool = False, **options) -> SynthResult:
    from retrieval_lab.paths import conf_dir, user_conf_dir

    root = Path(root).expanduser()
    if not NAME.match(out):
        raise SynthError(f"--out {out!r}: not a dataset name", "use letters, digits, '_', '-' and '.'")
    if (conf_dir() / "dataset" / f"{out}.yaml").exists():
        raise SynthError(f"--out {out}: conf/dataset/{out}.yaml already names a dataset", "choose another name")
    target = root / out
    if target.exists():
        raise SynthError(f"--out {out}: {target} already exists", "choose another name, or delete that folder")
    if queries < 1:
        raise SynthError(f"--queries {queries}: must be at least 1")
    source = source_folder(dataset, root)
    corpus = load_corpus(find_corpus_file(source))
    gen = make_generator(generator, cache_dir=cache_dir, **options)
    questions = gen.generate(corpus, queries, np.random.default_rng(seed))

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{out}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        link_or_copy(find_corpus_file(source), tmp)
        write_questions(tmp, questions, gen.name)
        written = load_dataset(tmp, split=SPLIT, name=out, questions=tmp / "questions.jsonl")  # every quote resolves
        load_dataset(tmp, split=SPLIT, name=out)
        info = {"generator": gen.name, "settings": gen.settings(), "seed": seed, "queries": len(questions),
                "queries_hash": written.queries.fingerprint, "split": SPLIT,
                "source": {"dataset": dataset, "folder": str(source.resolve()), "documents": len(corpus),
                           "corpus_hash": corpus.fingerprint},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if hasattr(gen, "report"):
            info["usage"] = gen.report()
        if lexical_check:
            info["lexical_check"] = lexical_figures(corpus, questions, gen.settings().get("window") or 2)
        (tmp / SYNTH_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    option = register_option(out, root, target, user_conf_dir(cache_dir), info)
    return SynthResult(target, option, questions, info)


def link_or_copy(corpus_file: Path, folder: Path) -> None:
    """A hard link when the file system allows it (the corpus is never rewritten in place), else a copy."""
    try:
        os.link(corpus_file, folder / corpus_file.name)
    except OSError:
        shutil.copy2(corpus_file, folder / corpus_file.name)


def question_ids(questions: list[SynthQuestion]) -> list[str]:
    width = len(str(len(questions)))
    return [f"synth-{i:0{width}d}" for i in range(1, len(questions) + 1)]


def write_questions_file(path: Path, questions: list[SynthQuestion], generator: str) -> None:
    """The questions in the own-documents questions format (data/question_file.py): `dataset.questions=<path>` over the
    source corpus evaluates them."""
    with open(path, "w", encoding="utf-8") as fh:
        for qid, q in zip(question_ids(questions), questions):
            fh.write(json.dumps({"id": qid, "question": q.question, "evidence": [q.evidence], "doc": q.doc,
                                 "generator": generator, "source_sentence": q.source, **q.meta},
                                ensure_ascii=False) + "\n")


def write_questions(folder: Path, questions: list[SynthQuestion], generator: str) -> None:
    ids = question_ids(questions)
    write_questions_file(folder / "questions.jsonl", questions, generator)
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, q in zip(ids, questions):
            fh.write(json.dumps({"_id": qid, "text": q.question}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir()
    with open(folder / "qrels" / f"{SPLIT}.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, q in zip(ids, questions):
            fh.write(f"{qid}\t{q.doc}\t1\n")


def register_option(name: str, root: Path, folder: Path, conf: Path, info: dict) -> Path:
    """`<cache>/conf/dataset/<name>.yaml`, found by Hydra as `dataset=<name>` (paths.extra_config_roots)."""
    option = conf / "dataset" / f"{name}.yaml"
    option.parent.mkdir(parents=True, exist_ok=True)
    node = {"name": name, "root": str(root.resolve()), "path": None, "split": SPLIT,
            "questions": str((folder / "questions.jsonl").resolve()), "include": None, "on_error": "skip",
            "ignore_identical_ids": False, "url": None, "md5": None}
    header = (f"# Written by `retrieval-lab data synth`: {info['queries']} {info['generator']} questions over "
              f"{info['source']['dataset']}'s corpus (see {folder / SYNTH_FILE}).\n")
    option.write_text(header + yaml.safe_dump(node, sort_keys=False), encoding="utf-8")
    return option


def lexical_figures(corpus: Corpus, questions: list[SynthQuestion], window: int = 2, k: int = 10) -> dict:
    """How lexical the questions are: BM25 (the lab's defaults) over the corpus's `window`-sentence passages (text
    only, no titles), MRR@k and nDCG@k of the passage holding each question's evidence, for the generated questions
    and for their source sentences copied verbatim. Passage level, as finding the document is easy for both."""
    from retrieval_lab.chunking import Passages
    from retrieval_lab.data.synth.base import sentence_windows
    from retrieval_lab.sparse import BM25, BM25Config

    rows, starts, ends, texts = [], [], [], []
    for row, text in enumerate(corpus.texts):
        for start, end, _ in sentence_windows(text, window, min_words=1):
            rows.append(row)
            starts.append(start)
            ends.append(end)
            texts.append(text[start:end])
    ids = [f"{corpus.ids[r]}#{i}" for i, r in enumerate(rows)]
    passages = Passages(ids, [corpus.ids[r] for r in rows], texts, np.array(starts), np.array(ends))

    bm25 = BM25(BM25Config()).index(passages)
    index = corpus.index_of()
    first = {}  # doc row -> its passages' (start, end, passage row)
    for i, (r, s, e) in enumerate(zip(rows, starts, ends)):
        first.setdefault(r, []).append((s, e, i))

    def gold(q: SynthQuestion) -> int | None:
        row = index[q.doc]
        at = corpus.texts[row].find(q.evidence)
        return next((i for s, e, i in first.get(row, []) if s <= at < e), None)

    golds = [gold(q) for q in questions]

    def figures(queries: list[str]) -> dict:
        found, _ = bm25.search(queries, k)
        ranks = [next((i + 1 for i, p in enumerate(hits) if p == g), None) for hits, g in zip(found, golds)]
        return {"mrr_at_10": float(np.mean([1 / r if r else 0.0 for r in ranks])),
                "ndcg_at_10": float(np.mean([1 / math.log2(r + 1) if r else 0.0 for r in ranks]))}

    return {"generated": figures([q.question for q in questions]), "copied": figures([q.source for q in questions]),
            "retriever": f"bm25 (lab defaults) over {len(ids):,} passages of {window} sentences (text only)",
            "queries": len(questions)}
