"""Small-to-big against plain chunks: evidence coverage of the returned units, on the R manuals and on SciFact.

Each configuration indexes fixed_tokens chunks (64 and 128 tokens, BM25) and returns, per retrieved chunk, one
unit (conf/unit/): the chunk itself, a window of +-1 neighbouring chunk, its section (heading to heading), or the
whole document. The span metrics score the returned units (retrieval_lab/evaluate/spans.py):
- evidence_coverage_budget_512: share of gold evidence characters inside the first 512 tokens of returned text in
  rank order (the unit that crosses the budget counts up to it): what a 512-token RAG context receives;
- evidence_coverage_at_1 / _at_5: the same in the top 1 / 5 units, whatever their size;
- unit_chars_top1: mean length of the first returned unit, so the size each unit pays for its coverage shows.
Datasets: r_manuals (88 questions with evidence quotes, conf/dataset/r_manuals.yaml, `make docs-data`) and SciFact
test (rationale sentences of the 188 claims that have them). Chunking and BM25 come from the cache when an earlier
run made them; the units step and the span metrics are computed here.

    .venv/bin/python benchmarks/small_to_big.py [--datasets r_manuals scifact] [--sizes 64 128]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

UNITS = ["chunk", "window", "section", "document"]
METRICS = ["evidence_coverage_budget_512", "evidence_coverage_at_1", "evidence_coverage_at_5"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["r_manuals", "scifact"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--units", nargs="+", default=UNITS, choices=UNITS)
    parser.add_argument("--out", default="benchmarks/results/small_to_big.json")
    args = parser.parse_args()

    from retrieval_lab.chunking.units import unit_spans_of
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.pipeline import run_experiment

    rows = []
    for name in args.datasets:
        base = [f"dataset={name}", "retriever=bm25", "chunker=fixed_tokens", "tracking.enabled=false"]
        cfg = compose_config(base)
        dataset = load_dataset(cfg.dataset, cache_root=cfg.cache.dir)
        for size in args.sizes:
            for unit in args.units:
                t0 = time.perf_counter()
                outcome = run_experiment(compose_config([*base, f"chunker.size={size}", f"unit={unit}"]),
                                         dataset=dataset)
                spans = unit_spans_of(outcome.trace.units)
                firsts = [end - start for hits in spans.values() for _, start, end in hits[:1]]
                row = {"dataset": name, "chunk_tokens": size, "unit": unit,
                       **{m: outcome.extra_metrics[m] for m in METRICS},
                       "queries_with_evidence": sum(1 for spans in dataset.evidence.values() if spans),
                       "unit_chars_top1": sum(firsts) / max(len(firsts), 1),
                       "ndcg_at_10": outcome.evaluation.means["ndcg_at_10"], "run_s": time.perf_counter() - t0}
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print()
    print("| dataset | chunk tokens | returned unit | evidence cov @512 tok | cov@1 | cov@5 | top-1 unit chars |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dataset']} ({r['queries_with_evidence']} q) | {r['chunk_tokens']} | {r['unit']} | "
              f"{r['evidence_coverage_budget_512']:.3f} | {r['evidence_coverage_at_1']:.3f} | "
              f"{r['evidence_coverage_at_5']:.3f} | {r['unit_chars_top1']:,.0f} |")


if __name__ == "__main__":
    main()
