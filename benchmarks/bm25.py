"""BM25 effectiveness vs Anserini and speed of the backends, measured side by side in one run.

Each (dataset, backend) is measured in a fresh subprocess so peak memory (max RSS) is its own.
Backends: the lab's default (its tokenizer + bm25s), the lab's rank_bm25 backend (same tokens), and bm25s used
directly with its own tokenizer (the reference the default must keep up with).

    .venv/bin/python benchmarks/bm25.py [--datasets scifact nfcorpus arguana] [--out benchmarks/results/bm25.json]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

ANSERINI_FLAT = {"scifact": 0.6789, "nfcorpus": 0.3218, "arguana": 0.3970}
BACKENDS = ["lab:bm25s", "lab:rank_bm25", "bm25s-direct"]


def measure(name: str, backend: str, root: str, queue) -> None:
    import numpy as np

    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.data import load_dataset
    from retrieval_lab.evaluate import evaluate
    from retrieval_lab.pipeline.steps import DocumentsStep
    from retrieval_lab.sparse import BM25, BM25Config
    from retrieval_lab.types import Run

    ds = load_dataset(Path(root) / name, "test", ignore_identical_ids=(name == "arguana"))
    passages = whole_documents(ds.corpus)
    depth = 101 if ds.ignore_identical_ids else 100
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if backend.startswith("lab:"):
        bm25 = BM25(BM25Config(backend=backend.split(":")[1]))
        t0 = time.perf_counter()
        bm25.index(passages)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        indices, scores = bm25.search(ds.queries.texts, depth)
        search_s = time.perf_counter() - t0
    else:
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        t0 = time.perf_counter()
        model = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        model.index(bm25s.tokenize(passages.texts, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tokens = bm25s.tokenize(ds.queries.texts, stopwords="en", stemmer=stemmer, show_progress=False)
        indices, scores = model.retrieve(tokens, k=depth, show_progress=False)
        search_s = time.perf_counter() - t0
        indices = np.where(scores > 0, indices, -1)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    passage_run = Run.from_arrays(ds.queries.ids, passages.ids, indices, scores)
    run = DocumentsStep("max", ds.ignore_identical_ids).of(passage_run, passages, 100)
    ndcg = evaluate(run, ds.qrels, ["ndcg", "recall"], [10, 100]).means
    queue.put({"dataset": name, "backend": backend, "queries": len(ds.queries), "docs": len(ds.corpus),
               "index_s": index_s, "qps": len(ds.queries) / search_s, "peak_rss_mb": peak_mb,
               "ndcg_at_10": ndcg["ndcg_at_10"], "recall_at_100": ndcg["recall_at_100"]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=list(ANSERINI_FLAT))
    parser.add_argument("--root", default=os.environ.get("RETRIEVAL_LAB_DATA", "data"))
    parser.add_argument("--out", default="benchmarks/results/bm25.json")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    for name in args.datasets:
        for backend in BACKENDS:
            queue = ctx.Queue()
            proc = ctx.Process(target=measure, args=(name, backend, args.root, queue))
            proc.start()
            rows.append(queue.get())
            proc.join()
            print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))

    print("\n| dataset | backend | nDCG@10 | Anserini flat | diff | R@100 | index s | queries/s | "
          "default / this (q/s) | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        default = next(r for r in rows if r["dataset"] == row["dataset"] and r["backend"] == "lab:bm25s")
        ref = ANSERINI_FLAT[row["dataset"]]
        print(f"| {row['dataset']} | {row['backend']} | {row['ndcg_at_10']:.4f} | {ref:.4f} | "
              f"{row['ndcg_at_10'] - ref:+.4f} | {row['recall_at_100']:.4f} | {row['index_s']:.2f} | "
              f"{row['qps']:,.0f} | {default['qps'] / row['qps']:.2f}x | {row['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
