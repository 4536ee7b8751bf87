"""A million passages: build time, peak memory and query latency of BM25 and dense (flat, IVF, HNSW, IVF-PQ) on
synthetic corpora of 100k and 1M documents shaped like SciFact (retrieval_lab/data/synthetic_corpus.py), with the
static WordLlama embedder.

    nice -n 10 python benchmarks/scale.py --work /tmp/retrieval-lab-scale [--sizes 100000 1000000]

Each measurement runs in its own process, through the lab's own chain (dataset folder -> passages -> first stage ->
documents), so its peak resident memory (ru_maxrss) is that configuration's alone. Order per size: `passages` (load
the corpus, chunk it: the cached passages stage every later step reuses), `bm25`, `flat` (encodes the corpus: the
embeddings entry the ANN indexes reuse), then `ivf`, `hnsw`, `ivfpq` (each built afresh: the index cache is emptied
before). Latency is the chain's own sample: the first 50 queries searched one at a time, end to end (query encoding,
search, documents). Corpora and caches live under --work (1M SciFact-sized documents: 1.5 GB of JSONL, 1 GB of
embeddings). The table is printed and written to --out as JSON with `uptime` load averages, since the machine is
shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

STAGES = {  # label -> overrides
    "passages": None,
    "bm25": ["retriever=bm25"],
    "flat": ["retriever=dense", "embedder=wordllama", "index=flat"],
    "ivf": ["retriever=dense", "embedder=wordllama", "index=ivf"],
    "hnsw": ["retriever=dense", "embedder=wordllama", "index=hnsw"],
    "ivfpq": ["retriever=dense", "embedder=wordllama", "index=ivfpq"],
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system): less sensitive than wall time to other jobs' load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(folder: Path, stage: str, cache_dir: Path) -> dict:
    """One configuration over one corpus, in this process: timings, memory, latency and quality."""
    from retrieval_lab.cache import Cache
    from retrieval_lab.config import compose_config
    from retrieval_lab.data.beir import load_dataset
    from retrieval_lab.evaluate import evaluate
    from retrieval_lab.pipeline.build import build_chain, first_stages, read_config

    t0 = time.perf_counter()
    dataset = load_dataset(folder)
    out = {"load_seconds": time.perf_counter() - t0, "rss_after_load_mb": rss_mb(), "docs": len(dataset.corpus),
           "queries": len(dataset.queries)}
    overrides = STAGES[stage] or ["retriever=bm25"]
    cfg = compose_config([f"dataset.path={folder}", f"cache.dir={cache_dir}", "tracking.enabled=false",
                          "embedder.progress=false", *overrides])
    settings = read_config(cfg)
    cache = Cache(cache_dir)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    chain = build_chain(cfg, dataset.corpus, cache, settings, first_stages(settings, cache))
    out["passages_seconds"], out["passages_cpu_seconds"] = time.perf_counter() - t0, cpu_seconds() - cpu0
    out["passages_cache_hit"] = bool(chain.passages.meta.get("cache_hit"))
    if stage == "passages":
        out["peak_rss_mb"] = peak_mb()
        return out
    cpu0 = cpu_seconds()
    trace = chain.run(dataset.queries, settings.eval.depth, cache_runs=False)
    out["run_cpu_seconds"] = cpu_seconds() - cpu0  # index (or encode) and all queries
    costs = trace.costs
    label = chain.first_stages[0].label
    out.update({"index_seconds": costs[f"{label}_index_seconds"], "peak_rss_mb": peak_mb(),
                "query_p50_ms": trace.latency_metrics()["query_p50_ms"],
                "query_p95_ms": trace.latency_metrics()["query_p95_ms"]})
    for key in ("encode_seconds", "embeddings_cache_hit", "index_build_seconds", "index_size_bytes",
                "ann_recall_at_10", "index_nlist", "index_nprobe", "index_pq_m", "index_train_size"):
        if f"{label}_{key}" in costs:
            out[key] = costs[f"{label}_{key}"]
    metrics = evaluate(trace.documents, dataset.qrels, ["recall", "ndcg"], [10, 100]).means
    out.update({"recall_at_100": metrics["recall_at_100"], "ndcg_at_10": metrics["ndcg_at_10"]})
    return out


def load_average() -> str:
    """1, 5 and 15 minute load averages (`uptime`)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ensure_corpus(folder: Path, like: str, docs: int, data_root: Path) -> float:
    """Generate the synthetic corpus unless present; seconds taken (0 when reused)."""
    if (folder / "corpus.jsonl").exists():
        return 0.0
    from retrieval_lab.data.beir import load_dataset, load_queries
    from retrieval_lab.data.synthetic_corpus import fit, write_corpus

    source = load_dataset(data_root / like)
    model = fit(source.corpus, load_queries(source.path / "queries.jsonl"))
    return write_corpus(model, folder, docs).seconds


def run_one(folder: Path, stage: str, cache_dir: Path, timeout: int) -> dict:
    if stage not in ("passages", "bm25", "flat"):  # built afresh: its ANN index must not come from the cache
        shutil.rmtree(cache_dir / "indexes", ignore_errors=True)
    cmd = [sys.executable, __file__, "--measure", str(folder), stage, str(cache_dir)]
    env = {**os.environ, "CI": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "wall_seconds": time.perf_counter() - t0}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - t0
    result["load_average"] = load_average()
    return result


def build_seconds(stage: str, r: dict) -> float:
    """passages: chunking; bm25: tokenize and index; flat: encoding (its index is the embeddings); ANN: the index
    built over the cached embeddings."""
    if stage == "passages":
        return r["passages_seconds"]
    return r["index_build_seconds"] if stage not in ("bm25", "flat") else r["index_seconds"]


def cpu_seconds_of(stage: str, r: dict) -> float:
    """CPU seconds of the stage's process for its own work: chunking for `passages`, else the index (or encoding)
    and all queries."""
    return r["passages_cpu_seconds"] if stage == "passages" else r["run_cpu_seconds"]


def table(results: dict) -> list[str]:
    sizes = sorted(int(s) for s in results)
    lines = ["| documents | stage | build s | CPU s | peak RSS MB | index MB | query p50 ms | known-item recall@100 | "
             "ANN recall@10 vs flat | sizing | load |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for size in sizes:
        for stage, r in results[str(size)].items():
            if "error" in r:
                lines.append(f"| {size:,} | {stage} | error | | | | | | | |")
                continue
            sizing = ", ".join(f"{k[6:]} {int(r[k]):,}" for k in ("index_nlist", "index_nprobe", "index_pq_m")
                               if k in r)
            index_mb = f"{r['index_size_bytes'] / 2**20:,.0f}" if "index_size_bytes" in r else ""
            p50 = f"{r['query_p50_ms']:.1f}" if "query_p50_ms" in r else ""
            recall = f"{r['recall_at_100']:.3f}" if "recall_at_100" in r else ""
            ann = f"{r['ann_recall_at_10']:.3f}" if stage not in ("passages", "bm25", "flat") else ""
            lines.append(f"| {size:,} | {stage} | {build_seconds(stage, r):,.1f} | {cpu_seconds_of(stage, r):,.1f} | "
                         f"{r['peak_rss_mb']:,.0f} | "
                         f"{index_mb} | {p50} | {recall} | {ann} | {sizing} | {r.get('load_average', '')} |")
    if len(sizes) == 2:
        small, large = (results[str(s)] for s in sizes)
        lines += ["", f"| stage | build x | CPU x | peak RSS x | query p50 x |  ({sizes[1] / sizes[0]:g}x the "
                  "documents) |",
                  "|---|---:|---:|---:|---:|---|"]
        for stage, b in large.items():
            a = small.get(stage)
            if not a or "error" in a or "error" in b:
                continue
            p50 = f"{b['query_p50_ms'] / a['query_p50_ms']:.1f}" if "query_p50_ms" in b else ""
            lines.append(f"| {stage} | {build_seconds(stage, b) / build_seconds(stage, a):.1f} | "
                         f"{cpu_seconds_of(stage, b) / cpu_seconds_of(stage, a):.1f} | "
                         f"{b['peak_rss_mb'] / a['peak_rss_mb']:.1f} | {p50} | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", nargs=3, metavar=("FOLDER", "STAGE", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--work", default="/tmp/retrieval-lab-scale", help="corpora and caches (large)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    parser.add_argument("--like", default="scifact", help="real dataset under the data root to fit the corpus on")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.json"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per measurement")
    args = parser.parse_args()
    if args.measure:
        folder, stage, cache_dir = args.measure
        print(json.dumps(measure(Path(folder), stage, Path(cache_dir))))
        return 0
    from retrieval_lab.data import data_root

    work = Path(args.work)
    results: dict = json.loads(Path(args.out).read_text()).get("results", {}) if Path(args.out).exists() else {}
    for size in args.sizes:
        folder = work / f"synthetic-{args.like}-{size}"
        seconds = ensure_corpus(folder, args.like, size, data_root())
        per_size = results.setdefault(str(size), {})
        if seconds:
            per_size["generate_seconds"] = {"seconds": seconds}
        for stage in args.stages:
            per_size[stage] = run_one(folder, stage, work / f"cache-{size}", args.timeout)
            print(size, stage, json.dumps(per_size[stage]), flush=True)
    shown = {size: {k: v for k, v in r.items() if k in STAGES} for size, r in results.items()}
    print("\n".join(table(shown)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "cpus": os.cpu_count(),
                                          "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
