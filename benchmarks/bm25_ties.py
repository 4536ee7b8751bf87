"""BM25 nDCG@10 on ArguAna by the depth asked for: runs as the backend orders tied scores, against `Run.from_arrays`
(trec_eval's order). Reproduces the figures in BENCHMARKS.md, "BM25".

    .venv/bin/python benchmarks/bm25_ties.py [--dataset arguana] [--depths 11 101 1001]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def main() -> None:
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.data import load_dataset
    from retrieval_lab.evaluate import evaluate
    from retrieval_lab.pipeline.steps import DocumentsStep
    from retrieval_lab.sparse import BM25, BM25Config
    from retrieval_lab.types import Run

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="arguana")
    parser.add_argument("--root", default=os.environ.get("RETRIEVAL_LAB_DATA", "data"))
    parser.add_argument("--depths", nargs="+", type=int, default=[11, 101, 1001])
    args = parser.parse_args()
    ds = load_dataset(Path(args.root) / args.dataset, "test", ignore_identical_ids=(args.dataset == "arguana"))
    passages = whole_documents(ds.corpus)
    bm25 = BM25(BM25Config()).index(passages)
    documents = DocumentsStep("max", ds.ignore_identical_ids)

    def ndcg(run: Run) -> float:
        return evaluate(documents.of(run, passages, 10), ds.qrels, ["ndcg"], [10]).means["ndcg_at_10"]

    print("| depth asked | queries with ties in their top 11 | nDCG@10, backend's tie order | "
          "nDCG@10, Run.from_arrays |")
    print("|---:|---:|---:|---:|")
    for k in args.depths:
        indices, scores = bm25.search(ds.queries.texts, k)
        as_returned = Run({qid: [(passages.ids[j], float(s)) for j, s in zip(indices[row], scores[row]) if j >= 0]
                           for row, qid in enumerate(ds.queries.ids)})
        tied = sum(len(np.unique(row[:11])) < min(11, len(row)) for row in scores)
        ordered = Run.from_arrays(ds.queries.ids, passages.ids, indices, scores)
        print(f"| {k:,} | {tied} | {ndcg(as_returned):.4f} | {ndcg(ordered):.4f} |")


if __name__ == "__main__":
    main()
