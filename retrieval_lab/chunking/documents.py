"""From ranked passages to documents: each document once (by its best, first or summed passages), and how many
passages a stage must return to fill k documents."""
from __future__ import annotations

import numpy as np

from retrieval_lab.chunking.passages import Passages


def aggregate_documents(hits: list[tuple[str, float]], passages: Passages, k: int,
                        mode: str = "max") -> list[tuple[str, float]]:
    """One query's ranked passages -> at most k (doc id, score), each document once (see pipeline.chain.DocumentsStep).

    `sum` adds the scores of the passages in `hits` only (those retrieved within the stage's depth): a document's
    passages below that depth add nothing, so sums compare documents by their retrieved evidence."""
    rows = passages.row_of()
    if mode == "sum":
        totals: dict[str, float] = {}
        for pid, score in hits:
            doc = passages.doc_ids[rows[pid]]
            totals[doc] = totals.get(doc, 0.0) + score
        order = {doc: i for i, doc in enumerate(totals)}  # ties keep first-appearance order
        return sorted(totals.items(), key=lambda item: (-item[1], order[item[0]]))[:k]
    if mode not in ("max", "first"):
        raise ValueError(f"unknown aggregation {mode!r}")
    seen, docs = set(), []
    for pid, score in hits:
        row = rows[pid]
        if mode == "first" and not passages.first_chunk(row):
            continue
        doc = passages.doc_ids[row]
        if doc not in seen:
            seen.add(doc)
            docs.append((doc, score))
            if len(docs) == k:
                break
    return docs


def unfilled_rows(indices: np.ndarray, passages: Passages, k: int, mode: str = "max") -> list[int]:
    """Rows (queries) whose passages yield fewer than k distinct documents for `mode` although the stage returned
    a full list (a list cut short means the stage ran out of matches: more depth adds nothing)."""
    if passages.is_whole_documents:  # every row its own document: a full list always fills k
        return []
    depth = indices.shape[1] if indices.ndim == 2 else 0
    doc_ids = passages.doc_id_array()
    out = []
    for i, row in enumerate(indices):
        valid = row[row >= 0]
        if len(valid) < depth:
            continue
        if mode == "first":
            valid = valid[np.array([passages.first_chunk(int(r)) for r in valid], dtype=bool)]
        if len(set(doc_ids[valid].tolist())) < k:
            out.append(i)
    return out


def passage_depth(passages: Passages, n_docs: int, k: int) -> int:
    """First guess of how many passages fill k documents: k times twice the mean chunks per document."""
    if passages.is_whole_documents:
        return k
    per_doc = len(passages) / max(n_docs, 1)
    return int(min(len(passages), max(k, np.ceil(k * per_doc * 2))))
