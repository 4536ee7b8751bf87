"""TREC-format runs (`qid Q0 docid rank score tag`) and qrels (`qid 0 docid grade`)."""
from __future__ import annotations

from pathlib import Path

from retrieval_lab.errors import DataError
from retrieval_lab.types import Qrels, Run


def write_trec_run(run: Run, path: str | Path, tag: str = "retrieval-lab") -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for qid, hits in run.items():
            for rank, (doc_id, score) in enumerate(hits, start=1):
                fh.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run; each query's hits are ordered by the rank column."""
    ranked: dict[str, list[tuple[int, str, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) != 6:
                raise DataError(path, f"expected 6 columns 'qid Q0 docid rank score tag', found {len(cols)}", lineno)
            try:
                rank, score = int(cols[3]), float(cols[4])
            except ValueError:
                raise DataError(path, "rank must be an integer and score a number", lineno) from None
            ranked.setdefault(cols[0], []).append((rank, cols[2], score))
    return Run({q: [(d, s) for _, d, s in sorted(rows, key=lambda r: r[0])] for q, rows in ranked.items()})


def write_trec_qrels(qrels: Qrels, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for qid, docs in qrels.items():
            for doc_id, grade in docs.items():
                fh.write(f"{qid} 0 {doc_id} {grade}\n")


def read_trec_qrels(path: str | Path) -> Qrels:
    qrels = Qrels()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) != 4:
                raise DataError(path, f"expected 4 columns 'qid 0 docid grade', found {len(cols)}", lineno)
            try:
                grade = int(cols[3])
            except ValueError:
                raise DataError(path, f"grade {cols[3]!r} is not an integer", lineno) from None
            qrels.setdefault(cols[0], {})[cols[2]] = grade
    return qrels
