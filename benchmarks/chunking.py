"""Chunkers side by side on SciFact: document metrics, evidence coverage within a token budget, chunk counts, time.

For each chunker (its conf/chunker/<name>.yaml defaults) x first stage (bm25, dense minilm_l6): document nDCG@10
and recall@100 (max-aggregated), evidence coverage (share of SciFact's rationale sentence characters) in the top 10
chunks and within 512 tokens of top-ranked chunk text, and the chunk statistics. Chunking time is measured fresh
here (no cache) in this process; embeddings come from the cache when an earlier run computed them
(`RETRIEVAL_LAB_CACHE`), else they are computed (minutes per chunker on 2 cores).

    .venv/bin/python benchmarks/chunking.py [--retrievers bm25 minilm_l6] [--chunkers none sentences ...]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

CHUNKERS = ["none", "fixed_tokens", "sentences", "recursive", "semantic"]
RETRIEVERS = {"bm25": ["retriever=bm25"], "minilm_l6": ["retriever=dense", "embedder=minilm_l6"]}


def chunking_seconds(name: str, corpus) -> float:
    from retrieval_lab.chunking import chunk_spans, chunker_config, load_tokenizer
    from retrieval_lab.config import compose_config

    _, config = chunker_config(compose_config([f"chunker={name}"]).chunker)
    tokens = load_tokenizer(config.tokenizer)
    encoder = None
    if name == "semantic":
        from retrieval_lab.chunking.semantic import load_encoder

        encoder = load_encoder(config.encoder)  # loading the 19 MB static table is not counted
    t0 = time.perf_counter()
    chunk_spans(name, config, corpus.texts, tokens, encoder)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--chunkers", nargs="+", default=CHUNKERS)
    parser.add_argument("--retrievers", nargs="+", default=list(RETRIEVERS))
    parser.add_argument("--root", default=os.environ.get("RETRIEVAL_LAB_DATA", "data"))
    parser.add_argument("--out", default="benchmarks/results/chunking.json")
    args = parser.parse_args()

    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.pipeline import run_experiment

    base = [f"dataset={args.dataset}", f"dataset.root={args.root}", "tracking.enabled=false"]
    dataset = load_dataset(compose_config(base).dataset)
    rows = []
    for chunker in args.chunkers:
        seconds = chunking_seconds(chunker, dataset.corpus)
        for retriever in args.retrievers:
            t0 = time.perf_counter()
            outcome = run_experiment(compose_config([*base, f"chunker={chunker}", *RETRIEVERS[retriever]]),
                                     dataset=dataset)
            m, x = outcome.evaluation.means, outcome.extra_metrics
            row = {"chunker": chunker, "retriever": retriever, "ndcg_at_10": m["ndcg_at_10"],
                   "recall_at_100": m["recall_at_100"], "evidence_coverage_at_10": x.get("evidence_coverage_at_10"),
                   "evidence_coverage_budget_512": x.get("evidence_coverage_budget_512"),
                   "evidence_iou_at_10": x.get("evidence_iou_at_10"), "chunks": int(x["chunks"]),
                   "chunk_tokens_mean": x.get("chunk_tokens_mean"), "chunk_tokens_p95": x.get("chunk_tokens_p95"),
                   "docs_single_chunk_share": x["docs_single_chunk_share"],
                   "chunks_truncated": x.get("chunks_truncated"), "chunking_s": seconds,
                   "run_s": time.perf_counter() - t0,
                   "encode_s": outcome.timings.get("dense_encode_seconds")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print()
    print("| chunker | first stage | nDCG@10 | R@100 | evidence cov@10 | evidence cov @512 tok | chunks | "
          "tokens mean / p95 | docs in 1 chunk | truncated | chunking s |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        trunc = "-" if r["chunks_truncated"] is None else f"{int(r['chunks_truncated']):,}"
        print(f"| {r['chunker']} | {r['retriever']} | {r['ndcg_at_10']:.4f} | {r['recall_at_100']:.4f} | "
              f"{r['evidence_coverage_at_10']:.3f} | {r['evidence_coverage_budget_512']:.3f} | {r['chunks']:,} | "
              f"{r['chunk_tokens_mean']:.0f} / {r['chunk_tokens_p95']:.0f} | {r['docs_single_chunk_share']:.1%} | "
              f"{trunc} | {r['chunking_s']:.1f} |")


if __name__ == "__main__":
    main()
