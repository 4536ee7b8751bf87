"""BM25 with and without RM3 query expansion, side by side on every collection: nDCG@10, R@100, the paired
randomization test of the difference, and search speed (queries/s) measured in the same process one after the other.

RM3 runs at Anserini's settings (10 feedback passages, 10 terms, original query weight 0.5), not tuned per dataset:
the figure shows what switching it on does, not the best it can do.

    .venv/bin/python benchmarks/rm3.py [--splits scifact:train nfcorpus:dev ...] [--out benchmarks/results/rm3.json]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

SPLITS = ["scifact:train", "scifact:test", "nfcorpus:dev", "nfcorpus:test", "arguana:test", "cranfield:test"]
RM3 = {"fb_docs": 10, "fb_terms": 10, "query_weight": 0.5}


def measure(name: str, split: str, root: str) -> dict:
    import numpy as np

    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.evaluate.significance import randomization_test
    from retrieval_lab.data import load_dataset
    from retrieval_lab.evaluate import evaluate
    from retrieval_lab.pipeline.steps import DocumentsStep
    from retrieval_lab.sparse import BM25, BM25Config
    from retrieval_lab.sparse.rm3 import RM3Config
    from retrieval_lab.types import Run

    ds = load_dataset(Path(root) / name, split, ignore_identical_ids=(name == "arguana"))
    passages = whole_documents(ds.corpus)
    depth = 101 if ds.ignore_identical_ids else 100
    row = {"dataset": name, "split": split, "queries": len(ds.queries)}
    per_query = {}
    for label, config in (("bm25", BM25Config()), ("rm3", BM25Config(rm3=RM3Config(**RM3)))):
        bm25 = BM25(config).index(passages)
        t0 = time.perf_counter()
        indices, scores = bm25.search(ds.queries.texts, depth)
        seconds = time.perf_counter() - t0
        run = DocumentsStep("max", ds.ignore_identical_ids).of(
            Run.from_arrays(ds.queries.ids, passages.ids, indices, scores), passages, 100)
        evaluation = evaluate(run, ds.qrels, ["ndcg", "recall"], [10, 100])
        per_query[label] = evaluation.per_query["ndcg_at_10"]
        row[label] = {"ndcg_at_10": evaluation.means["ndcg_at_10"], "recall_at_100": evaluation.means["recall_at_100"],
                      "queries_per_second": len(ds.queries) / seconds}
    row["p_value"] = randomization_test(np.asarray(per_query["rm3"]), np.asarray(per_query["bm25"]))
    return row


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", nargs="+", default=SPLITS, help="dataset:split pairs")
    parser.add_argument("--root", default=os.environ.get("RETRIEVAL_LAB_DATA", "data"))
    parser.add_argument("--out", default="benchmarks/results/rm3.json")
    args = parser.parse_args()
    rows = []
    for pair in args.splits:
        name, split = pair.split(":")
        rows.append(measure(name, split, args.root))
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))

    print("\n| dataset | split | queries | BM25 nDCG@10 | + RM3 | diff | p | BM25 R@100 | + RM3 | "
          "RM3 speed (q/s vs BM25) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        plain, rm3 = row["bm25"], row["rm3"]
        print(f"| {row['dataset']} | {row['split']} | {row['queries']} | {plain['ndcg_at_10']:.4f} | "
              f"{rm3['ndcg_at_10']:.4f} | {rm3['ndcg_at_10'] - plain['ndcg_at_10']:+.4f} | {row['p_value']:.4f} | "
              f"{plain['recall_at_100']:.4f} | {rm3['recall_at_100']:.4f} | "
              f"{rm3['queries_per_second']:,.0f} ({rm3['queries_per_second'] / plain['queries_per_second']:.2f}x) |")


if __name__ == "__main__":
    main()
