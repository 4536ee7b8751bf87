"""Judgements as they are made, and the judged set derived from them.

`judgements.jsonl` is append-only: one JSON line per judgement, written with flush and fsync before the page is told
it is saved, so a judgement the page showed as saved survives the process being killed. A process killed in the
middle of a write leaves at most a partial last line: the store drops it with a warning when it opens (the page never
saw that judgement as saved).

Several assessors (`judge --assessor NAME`) share one folder: each line names its assessor, and every write happens
under an exclusive lock on `judgements.lock` after reading the lines other processes appended, so two page servers
on one pool lose or overwrite nothing. Each assessor's last judgement of a (question, unit) pair counts; the pair's
grade is the median of those (with two assessors, or any even number, the lower of the two middle grades: a unit
counts as relevant only when most assessors say so).

From them, after every judgement, two files are replaced atomically:
- `judged.jsonl`: the questions in pool order with `grades` (each judged document's best grade: 2 relevant, 1
  partly, 0 not relevant), `evidence` spans (the text selected on relevant units, as exact document offsets with
  the quote) and `pool_depth`: a questions file for `dataset.questions=` (data/question_file.py);
- `qrels.tsv`: the same grades in BEIR's qrels layout.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from retrieval_lab.errors import DataError
from retrieval_lab.judging.pool import Pool, write_atomically
from retrieval_lab.types import Corpus

log = logging.getLogger(__name__)

JUDGEMENTS = "judgements.jsonl"
LOCK = "judgements.lock"
JUDGED_SET = "judged.jsonl"
QRELS = "qrels.tsv"
GRADES = {2: "relevant", 1: "partly relevant", 0: "not relevant"}


@dataclass(frozen=True)
class Judgement:
    query_id: str
    question: str  # the text judged: a judgement of another wording of the question does not carry over
    doc: str
    start: int  # the unit judged: its span of the document text
    end: int
    grade: int
    evidence: tuple[tuple[int, int, str], ...] = ()  # (start, end, quote) in the document text, inside the unit
    at: str = ""
    assessor: str = ""  # "" in folders judged before assessors were recorded

    @property
    def key(self) -> tuple[str, str, int, int]:
        return self.query_id, self.doc, self.start, self.end

    def to_json(self) -> dict:
        return {"query_id": self.query_id, "question": self.question, "doc": self.doc, "start": self.start,
                "end": self.end, "grade": self.grade, "evidence": [list(e) for e in self.evidence], "at": self.at,
                "assessor": self.assessor}

    @classmethod
    def from_json(cls, data: dict) -> "Judgement":
        grade = data["grade"]
        if grade not in GRADES:
            raise ValueError(f"grade {grade!r} is not one of {sorted(GRADES)}")
        evidence = tuple((int(s), int(e), str(q)) for s, e, q in data.get("evidence") or [])
        return cls(str(data["query_id"]), str(data["question"]), str(data["doc"]), int(data["start"]),
                   int(data["end"]), int(grade), evidence, str(data.get("at", "")), str(data.get("assessor", "")))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def consensus_grade(grades: list[int]) -> int:
    """The median of the assessors' grades; of an even number, the lower middle one."""
    ordered = sorted(grades)
    return ordered[(len(ordered) - 1) // 2]


class JudgementStore:
    """The judgements of one judging folder: `latest` maps each (question, doc, start, end) to its last judgement by
    anyone, in the order they were last judged; `own` maps ((question, doc, start, end), assessor) to that assessor's
    last judgement of it. `refresh()` reads what other processes appended since."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / JUDGEMENTS
        self.lock_path = Path(folder) / LOCK
        self.latest: dict[tuple[str, str, int, int], Judgement] = {}
        self.own: dict[tuple[tuple[str, str, int, int], str], Judgement] = {}
        self.offset = 0  # bytes of the file read so far (complete lines only)
        self.lines = 0
        self.reading = threading.RLock()  # the page server's threads share one read position
        self.dropped_partial_line = False
        if self.path.exists():
            with self.locked():  # a partial last line is a dead writer's only while no live one holds the lock
                self._drop_partial_line()
                self.refresh()

    @contextmanager
    def locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _drop_partial_line(self) -> None:
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if data[complete:].strip():
            # a write cut short by a kill: that judgement was never confirmed to the page; drop it so the next
            # append starts on a line of its own
            log.warning("%s: dropped a partial last line (the process was stopped while writing it): %r",
                        self.path, data[complete:][:80])
            with open(self.path, "r+b") as fh:
                fh.truncate(complete)
                fh.flush()
                os.fsync(fh.fileno())
            self.dropped_partial_line = True

    def refresh(self) -> int:
        """Read the complete lines appended since the last read (by this process or another); how many."""
        with self.reading:
            return self._read_new()

    def _read_new(self) -> int:
        if not self.path.exists() or self.path.stat().st_size == self.offset:
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data.rfind(b"\n") + 1  # a line another process is still writing is read next time
        added = 0
        for line in data[:complete].decode("utf-8", errors="replace").splitlines():
            self.lines += 1
            if not line.strip():
                continue
            try:
                judgement = Judgement.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(self.path, f"not a judgement ({exc})", self.lines,
                                "repair or delete that line (each line is one judgement as the judging page "
                                "wrote it)") from None
            self._apply(judgement)
            added += 1
        self.offset += complete
        return added

    def _apply(self, judgement: Judgement) -> None:
        self.latest.pop(judgement.key, None)
        self.latest[judgement.key] = judgement
        self.own.pop((judgement.key, judgement.assessor), None)
        self.own[(judgement.key, judgement.assessor)] = judgement

    def record(self, judgement: Judgement) -> None:
        """Append the judgement and fsync before returning: once this returns, it is on disk. Call it holding
        `locked()` (with the judged set written under the same lock) or alone: it takes the lock itself then."""
        line = (json.dumps(judgement.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new file's directory entry, too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.refresh()  # this line and any another process appended before it

    def assessors_of(self, key) -> dict[str, Judgement]:
        return {a: j for (k, a), j in self.own.items() if k == key}

    def units(self) -> dict[tuple[str, str, int, int], dict[str, Judgement]]:
        """Each judged unit's last judgement per assessor."""
        out: dict[tuple[str, str, int, int], dict[str, Judgement]] = {}
        for (key, assessor), judgement in self.own.items():
            out.setdefault(key, {})[assessor] = judgement
        return out


@dataclass
class JudgedSet:
    """What the judged set holds: counts for the console and the page."""

    questions: int  # questions of the pool
    evaluated: int  # those with a relevant document: the queries a run averages over
    graded: int  # (question, document) grades
    evidence: int  # evidence spans
    left_out: int  # judgements left out: of a reworded question, or of a document no longer in the corpus


def unit_grades(pool: Pool, store: "JudgementStore") -> dict[tuple[str, str, int, int], int]:
    """The grade of each judged unit of the current questions: the assessors' consensus (module docstring)."""
    text = pool.question_text()
    out = {}
    for key, by in store.units().items():
        grades = [j.grade for j in by.values() if text.get(j.query_id) == j.question]
        if grades:
            out[key] = consensus_grade(grades)
    return out


def judged_rows(pool: Pool, judgements: list[Judgement], corpus: Corpus) -> tuple[list[dict], int]:
    """One questions-file row per pool question, in pool order (the same ids and texts, so a run on the judged set
    replays the pool's cached first-stage runs), and the number of judgements left out. `judgements`: each
    assessor's last judgement of each unit; a unit's grade is their consensus, its evidence what the assessors who
    found it relevant or partly relevant selected."""
    text = pool.question_text()
    known_docs = set(corpus.ids)
    grades: dict[str, dict[str, int]] = {q: {} for q in pool.questions.ids}
    evidence: dict[str, list[dict]] = {q: [] for q in pool.questions.ids}
    by_unit: dict[tuple[str, str, int, int], list[Judgement]] = {}
    left_out = 0
    for j in judgements:
        if text.get(j.query_id) != j.question or j.doc not in known_docs:
            left_out += 1
            continue
        by_unit.setdefault(j.key, []).append(j)
    for key, js in by_unit.items():
        qid, doc = key[0], key[1]
        grade = consensus_grade([j.grade for j in js])
        grades[qid][doc] = max(grade, grades[qid].get(doc, 0))
        if grade >= 1:
            evidence[qid].extend({"doc": doc, "start": s, "end": e, "quote": q}
                                 for j in js if j.grade >= 1 for s, e, q in j.evidence)
    rows = []
    for qid, question in zip(pool.questions.ids, pool.questions.texts):
        row = {"id": qid, "question": question, "grades": grades[qid]}
        spans = sorted({(e["doc"], e["start"], e["end"]): e for e in evidence[qid]}.values(),
                       key=lambda e: (e["doc"], e["start"], e["end"]))
        if spans:
            row["evidence"] = spans
        row["pool_depth"] = pool.depth
        rows.append(row)
    return rows, left_out


def write_judged_set(folder: Path, pool: Pool, store: JudgementStore, corpus: Corpus) -> JudgedSet:
    """Replace judged.jsonl and qrels.tsv with what the judgements say now (module docstring)."""
    rows, left_out = judged_rows(pool, list(store.own.values()), corpus)
    write_atomically(folder / JUDGED_SET, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{r['id']}\t{doc}\t{grade}" for r in rows for doc, grade in sorted(r["grades"].items())]
    write_atomically(folder / QRELS, "\n".join(lines) + "\n")
    return JudgedSet(len(rows), sum(any(g >= 1 for g in r["grades"].values()) for r in rows),
                     sum(len(r["grades"]) for r in rows), sum(len(r.get("evidence", [])) for r in rows), left_out)
