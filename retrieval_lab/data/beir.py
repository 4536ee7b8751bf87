"""Load and validate a BEIR-layout folder: corpus.jsonl[.gz], queries.jsonl, qrels/<split>.tsv.

Every problem is reported with the file and line and what to do about it; soft problems (qrels naming documents
that are not in the corpus) are warnings with a count, as the official ArguAna release has five of them.
"""
from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.data.folder import skipped_files
from retrieval_lab.data.evidence import Evidence, evidence_fingerprint, rationale_evidence
from retrieval_lab.data.jsonl import json_objects
from retrieval_lab.data.questions import load_questions
from retrieval_lab.errors import DataError
from retrieval_lab.types import Corpus, Qrels, Queries, _digest

log = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True)
class Dataset:
    """One split of a collection, ready to evaluate: its queries are exactly those judged in the split's qrels (or
    those of a questions file). `evidence` is its span gold (data/evidence.py), empty when it has none."""

    name: str
    split: str
    path: Path
    corpus: Corpus
    queries: Queries
    qrels: Qrels
    ignore_identical_ids: bool = False
    evidence: Evidence = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        parts = [self.corpus.fingerprint, self.queries.fingerprint, self.qrels.fingerprint]
        if self.evidence:  # without span gold the hash stays what it was before span gold existed
            parts.append(evidence_fingerprint(self.evidence))
        return _digest(parts)


def _open_lines(path: Path):
    """Yield (line number, decoded line); invalid UTF-8 is an error naming the line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(path, f"invalid UTF-8 at byte {exc.start} of the line", lineno,
                                    "re-encode the file as UTF-8") from None
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip
        if isinstance(exc, FileNotFoundError):
            raise DataError(path, "file not found") from None
        raise DataError(path, f"cannot read file: {exc}", fix="re-download or re-extract it") from None


def read_jsonl(path: Path, kind: str):
    """Yield (line number, object) for each non-blank line of a JSONL file; each object needs `_id` and `text`."""
    for lineno, obj in json_objects(path, _open_lines(path), f"each line of a {kind} file must be one JSON object"):
        for key in ("_id", "text"):
            if key not in obj:
                raise DataError(path, f"missing field '{key}'", lineno,
                                f"every {kind} record needs '_id' and 'text' (text may be empty)")
        if not isinstance(obj["_id"], (str, int)) or str(obj["_id"]) == "":
            raise DataError(path, f"'_id' must be a non-empty string, got {obj['_id']!r}", lineno)
        if not isinstance(obj["text"], str):
            raise DataError(path, f"'text' must be a string, got {type(obj['text']).__name__}", lineno)
        yield lineno, obj


def _check_unique(path: Path, seen: dict[str, int], doc_id: str, lineno: int) -> None:
    if doc_id in seen:
        raise DataError(path, f"duplicate _id '{doc_id}' (first seen on line {seen[doc_id]})", lineno,
                        "ids must be unique; remove or rename one of the records")
    seen[doc_id] = lineno


def load_corpus(path: Path) -> Corpus:
    ids, titles, texts, metadata, seen = [], [], [], [], {}
    for lineno, obj in read_jsonl(path, "corpus"):
        doc_id = str(obj["_id"])
        _check_unique(path, seen, doc_id, lineno)
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise DataError(path, f"'title' must be a string, got {type(title).__name__}", lineno)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise DataError(path, f"'metadata' must be a JSON object, got {type(meta).__name__}", lineno)
        ids.append(doc_id)
        titles.append(title)
        texts.append(obj["text"])
        metadata.append(meta)
    if not ids:
        raise DataError(path, "the corpus is empty", fix="point the dataset at a folder with documents")
    return Corpus(ids, titles, texts, metadata)


def load_queries(path: Path) -> Queries:
    ids, texts, metadata, seen = [], [], [], {}
    for lineno, obj in read_jsonl(path, "queries"):
        qid = str(obj["_id"])
        _check_unique(path, seen, qid, lineno)
        ids.append(qid)
        texts.append(obj["text"])
        metadata.append(obj.get("metadata") or {})
    if not ids:
        raise DataError(path, "the queries file is empty")
    return Queries(ids, texts, metadata)


def load_qrels(path: Path) -> Qrels:
    """Read a BEIR qrels TSV (header `query-id corpus-id score`); scores are integers, 0 = judged non-relevant."""
    qrels = Qrels()
    lines = _open_lines(path)
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise DataError(path, "the qrels file is empty", 1)
    header = tuple(first[1].rstrip("\r\n").split("\t"))
    if header != QRELS_HEADER:
        raise DataError(path, f"wrong header {'|'.join(header)!r}", 1,
                        "the first line must be 'query-id<TAB>corpus-id<TAB>score'")
    rows = 0
    for lineno, line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise DataError(path, f"expected 3 tab-separated columns, found {len(cols)}", lineno,
                            "each row is 'query-id<TAB>corpus-id<TAB>score'")
        qid, doc_id, score = cols
        try:
            rel = int(score)
        except ValueError:
            raise DataError(path, f"score {score!r} is not an integer", lineno,
                            "relevance must be a whole number (0 = judged non-relevant)") from None
        qrels.setdefault(qid, {})[doc_id] = rel
        rows += 1
    if rows == 0:
        raise DataError(path, "the qrels file has a header but no judgements")
    return qrels


def find_corpus_file(folder: Path) -> Path:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).exists():
            return folder / name
    raise DataError(folder / "corpus.jsonl", "file not found (nor corpus.jsonl.gz)",
                    fix="a BEIR folder holds corpus.jsonl[.gz], queries.jsonl and qrels/<split>.tsv")


def available_splits(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))


def read_dataset(folder: str | Path, split: str = "test", name: str | None = None,
                 ignore_identical_ids: bool = False, questions: str | Path | None = None) -> Dataset:
    """Read a BEIR folder's split from its files (callers use `retrieval_lab.data.load_dataset`, which keeps what it
    read); with `questions` (a JSONL or CSV file, data/question_file.py) the queries, qrels and span
    gold come from that file instead, and the folder needs only its corpus. Without it, rationale sentence indices
    in the queries' metadata (SciFact) become the span gold."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "dataset folder not found",
                        fix="set dataset.root (or RETRIEVAL_LAB_DATA) to the folder holding it, "
                            "or `retrieval-lab data pull NAME`")
    if questions is not None:
        corpus = load_corpus(find_corpus_file(folder))
        gold = load_questions(questions, corpus, skipped_files(folder))
        return Dataset(name=name or folder.name, split=split, path=folder, corpus=corpus, queries=gold.queries,
                       qrels=gold.qrels, ignore_identical_ids=ignore_identical_ids, evidence=gold.evidence)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        splits = available_splits(folder)
        if not splits and not (folder / "queries.jsonl").exists():
            raise DataError(folder, "no queries.jsonl and no qrels/: this folder has documents but no questions",
                            fix="set dataset.questions=FILE (a .jsonl or .csv of questions with evidence quotes "
                                "or docs; see README)")
        raise DataError(qrels_path, f"split '{split}' not found; splits here: {', '.join(splits) or 'none'}",
                        fix=f"use dataset.split={splits[0]}" if splits else "add qrels/<split>.tsv")
    corpus = load_corpus(find_corpus_file(folder))
    all_queries = load_queries(folder / "queries.jsonl")
    qrels = load_qrels(qrels_path)

    known_q = set(all_queries.ids)
    unknown_q = [q for q in qrels if q not in known_q]
    if unknown_q:
        log.warning("%s: %d judged queries are not in queries.jsonl (e.g. %s); they are skipped",
                    qrels_path, len(unknown_q), unknown_q[0])
        for q in unknown_q:
            del qrels[q]
    known_d = set(corpus.ids)
    unknown_d = sum(1 for docs in qrels.values() for d in docs if d not in known_d)
    if unknown_d:
        log.warning("%s: %d judgements name documents not in the corpus; they still count as relevant "
                    "(recall cannot reach 1 for those queries)", qrels_path, unknown_d)
    if not qrels:
        raise DataError(qrels_path, "no judged query of this split is in queries.jsonl")
    queries = all_queries.subset(set(qrels))
    return Dataset(name=name or folder.name, split=split, path=folder, corpus=corpus, queries=queries, qrels=qrels,
                   ignore_identical_ids=ignore_identical_ids,
                   evidence=rationale_evidence(queries, corpus, str(folder / "queries.jsonl")))
