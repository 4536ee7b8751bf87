"""Dense retrieval per model and backend on SciFact and NFCorpus, measured side by side in one run.

Three parts, each written to the JSON file as soon as it is measured (a run cut short keeps what it measured):

1. Encode speed, interleaved: every variant encodes the same random sample of passages of each dataset, round after
   round (A B C ... A B C ...), so load from other processes on the machine hits every variant alike. The reference
   is plain sentence-transformers (`SentenceTransformer.encode(texts, batch_size=32)`, max 256 tokens, which sorts by
   length itself); the ratio of each variant's passages/s to it is the speed-up.
2. Quality on the full corpus (test split, title + text, flat index): nDCG@10, recall@100, encode passages/s of the
   full encode (when this run computed it; from the cache entry's record otherwise) and query latency (one query
   encoded and searched, p50 over 50 queries). Embeddings come from the shared content-addressed cache.
3. Cache and ANN: a second identical run of minilm_l6 on SciFact (the embeddings and the run are cache hits) against
   the first run's encode time, and HNSW / IVF recall@10 against flat for the same queries.
4. Query latency, interleaved: each variant's stage over its cached embeddings, one query encoded and searched
   (top 100, flat), p50/p95 over 50 queries, variants taking turns query by query.

    RETRIEVAL_LAB_CACHE=.cache/test-cache nice -n 10 .venv/bin/python benchmarks/dense.py \
        [--datasets scifact nfcorpus] [--sample 96] [--rounds 2] [--out benchmarks/results/dense.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in the log

# (label, embedder config group, backend); "st_plain" is sentence-transformers called directly (the reference)
SPEED_VARIANTS = [("minilm_l6 st_plain", "minilm_l6", "st_plain"), ("minilm_l6 torch", "minilm_l6", "torch"),
                  ("minilm_l6 torch_bf16", "minilm_l6", "torch_bf16"), ("minilm_l6 onnx", "minilm_l6", "onnx"),
                  ("minilm_l6 onnx_int8", "minilm_l6", "onnx_int8"), ("minilm_l3 onnx", "minilm_l3", "onnx"),
                  ("minilm_l3 onnx_int8", "minilm_l3", "onnx_int8"), ("wordllama static", "wordllama", "static")]
# full-corpus quality in priority order (cheap models first, then the MiniLM-L6 reference and the fast variants),
# so a run cut short still covers every model; "cache" = the cache-hit rerun and ANN part (needs scifact torch)
PLAN = [("scifact", "wordllama", "static"), ("nfcorpus", "wordllama", "static"),
        ("scifact", "minilm_l3", "onnx"), ("nfcorpus", "minilm_l3", "onnx"),
        ("scifact", "minilm_l3", "onnx_int8"), ("nfcorpus", "minilm_l3", "onnx_int8"),
        ("scifact", "minilm_l6", "torch"), "cache",
        ("scifact", "minilm_l6", "onnx_int8"), ("scifact", "minilm_l6", "onnx"),
        ("nfcorpus", "minilm_l6", "torch"), ("nfcorpus", "minilm_l6", "onnx_int8"),
        ("scifact", "minilm_l6", "torch_bf16"), ("nfcorpus", "minilm_l6", "onnx"),
        ("nfcorpus", "minilm_l6", "torch_bf16")]
ANN_VARIANTS = ["index=hnsw index.ef_search=32", "index=hnsw index.ef_search=64", "index=hnsw index.ef_search=128",
                "index=hnsw index.ef_search=256", "index=ivf index.nlist=64 index.nprobe=8",
                "index=ivf index.nlist=64 index.nprobe=16",
                "index=ivf index.nlist=64 index.nprobe=32"]  # nlist as when measured (now sized for N)


class Results:
    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("machine", {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()[0]})

    def put(self, section: str, key: str, value) -> None:
        self.data.setdefault(section, {})[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def overrides(group: str, backend: str, dataset: str, root: str) -> list[str]:
    return [f"dataset={dataset}", f"dataset.root={root}", "retriever=dense", f"embedder={group}",
            f"embedder.backend={backend}", "embedder.progress=false", "tracking.enabled=false"]


def corpus_texts(dataset: str, root: str) -> list[str]:
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.data import load_dataset

    return whole_documents(load_dataset(Path(root) / dataset, "test").corpus).texts


def speed(results: Results, datasets: list[str], root: str, sample: int, rounds: int) -> None:
    from retrieval_lab.cache import Cache
    from retrieval_lab.config import compose_config
    from retrieval_lab.dense import embedder_config, load_embedder
    from retrieval_lab.dense.backends.sentence_transformers import load_sentence_transformer

    encoders = {}
    cache = Cache()
    for label, group, backend in SPEED_VARIANTS:
        if backend == "st_plain":
            model = load_sentence_transformer(group)
            model.max_seq_length = 256
            encoders[label] = lambda texts, m=model: m.encode(texts, batch_size=32, normalize_embeddings=True,
                                                              convert_to_numpy=True, show_progress_bar=False)
        else:
            cfg = compose_config(overrides(group, backend, datasets[0], root))
            embedder = load_embedder(embedder_config(cfg.embedder), cache)
            encoders[label] = lambda texts, e=embedder: e.encode(texts, progress=False)
    for dataset in datasets:
        texts = corpus_texts(dataset, root)
        rng = np.random.default_rng(0)
        chosen = [texts[i] for i in rng.choice(len(texts), min(sample, len(texts)), replace=False)]
        for encode in encoders.values():  # warm-up (first-call allocations, ONNX session init)
            encode(chosen[:8])
        rates: dict[str, list[float]] = {label: [] for label in encoders}
        reference = {}
        for r in range(rounds):
            for label, encode in encoders.items():
                t0 = time.perf_counter()
                vectors = encode(chosen)
                rates[label].append(len(chosen) / (time.perf_counter() - t0))
                reference.setdefault(label, vectors)
                logging.info("speed %s round %d %s: %.1f passages/s", dataset, r, label, rates[label][-1])
        base = reference["minilm_l6 st_plain"]
        for label, values in rates.items():
            cosine = (reference[label] * base).sum(1) if reference[label].shape == base.shape else None
            results.put("speed", f"{dataset}|{label}", {
                "passages_per_second": float(np.median(values)), "rounds": values, "sample": len(chosen),
                "min_cosine_to_reference": float(cosine.min()) if cosine is not None else None,
                "mean_cosine_to_reference": float(cosine.mean()) if cosine is not None else None})


def quality_one(results: Results, dataset: str, group: str, backend: str, root: str) -> None:
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment

    key = f"{dataset}|{group} {backend}"
    t0 = time.perf_counter()
    outcome = run_experiment(compose_config(overrides(group, backend, dataset, root)))
    wall = time.perf_counter() - t0
    t, m = outcome.timings, outcome.evaluation.means
    results.put("quality", key, {
        "ndcg_at_10": m["ndcg_at_10"], "recall_at_100": m["recall_at_100"],
        "encode_passages_per_second": t.get("dense_encode_passages_per_second"),
        "encode_seconds": t.get("dense_encode_seconds"), "query_p50_ms": t.get("query_p50_ms"),
        "query_p95_ms": t.get("query_p95_ms"), "index_size_bytes": t.get("dense_index_size_bytes"),
        "peak_memory_mb": t.get("dense_peak_memory_mb"), "run_cache_hit": t.get("dense_cache_hit"),
        "embeddings_cache_hit": t.get("dense_embeddings_cache_hit"), "wall_seconds": wall})
    logging.info("quality %s: nDCG@10 %.4f R@100 %.4f (%.0f s)", key, m["ndcg_at_10"], m["recall_at_100"], wall)


def cache_and_ann(results: Results, root: str) -> None:
    from retrieval_lab.cache import Cache
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.dense import DenseRetriever, embedder_config
    from retrieval_lab.dense.index import index_config
    from retrieval_lab.pipeline import run_experiment

    base = overrides("minilm_l6", "torch", "scifact", root)
    first = run_experiment(compose_config(base))  # computed in `quality` (or earlier, by anyone sharing the cache)
    encode_s = first.timings["dense_encode_seconds"]
    t0 = time.perf_counter()
    again = run_experiment(compose_config(base))
    rerun_s = time.perf_counter() - t0
    cfg = compose_config(base + ["index=hnsw"])
    passages = whole_documents(load_dataset(Path(root) / "scifact", "test").corpus)
    t0 = time.perf_counter()
    stage = DenseRetriever(embedder_config(cfg.embedder), index_config(cfg.index), Cache()).index(passages)
    stage_s = time.perf_counter() - t0
    results.put("cache", "scifact|minilm_l6 torch", {
        "first_encode_seconds": encode_s, "second_run_seconds": rerun_s,
        "second_run_ratio": rerun_s / encode_s, "second_run_was_cache_hit": again.timings.get("dense_cache_hit"),
        "embeddings_hit_index_seconds": stage_s, "embeddings_hit_ratio": stage_s / encode_s,
        "embeddings_hit": stage.stats()["embeddings_cache_hit"],
        "note": "second run = whole run_experiment (dataset load, cached first stage, evaluation); "
                "embeddings hit = a new dense stage (HNSW) reading the cached embeddings"})
    for extra in ANN_VARIANTS:
        outcome = run_experiment(compose_config(base + extra.split()))
        t = outcome.timings
        results.put("ann", f"scifact|minilm_l6 torch|{extra}", {
            "ann_recall_at_10": t["dense_ann_recall_at_10"], "ndcg_at_10": outcome.evaluation.means["ndcg_at_10"],
            "query_p50_ms": t["query_p50_ms"], "index_build_seconds": t.get("dense_index_build_seconds"),
            "index_size_bytes": t.get("dense_index_size_bytes")})
        logging.info("ann %s: recall@10 %.4f", extra, t["dense_ann_recall_at_10"])


def latency(results: Results, datasets: list[str], root: str, count: int = 50) -> None:
    """One query encoded and searched (flat index over the cached embeddings), p50/p95 over `count` queries,
    the variants interleaved query by query so machine load hits them alike."""
    from retrieval_lab.cache import Cache
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.dense import DenseRetriever, embedder_config
    from retrieval_lab.dense.index import index_config

    for dataset in datasets:
        ds = load_dataset(Path(root) / dataset, "test")
        passages = whole_documents(ds.corpus)
        stages = {}
        for group, backend in sorted({(g, b) for d, g, b in (p for p in PLAN if p != "cache")}):
            if f"{dataset}|{group} {backend}" not in results.data.get("quality", {}):
                continue  # embeddings not computed in this study: nothing to search
            cfg = compose_config(overrides(group, backend, dataset, root))
            stage = DenseRetriever(embedder_config(cfg.embedder), index_config(cfg.index), Cache())
            stage.index(passages)
            stage.search(ds.queries.texts[:1], 10)  # loads the model
            stages[f"{group} {backend}"] = (stage, [])
        for text in ds.queries.texts[:count]:
            for stage, times in stages.values():
                t0 = time.perf_counter()
                stage.search([text], 100)
                times.append((time.perf_counter() - t0) * 1000)
        for label, (_, times) in stages.items():
            results.put("latency", f"{dataset}|{label}", {"p50_ms": float(np.percentile(times, 50)),
                                                          "p95_ms": float(np.percentile(times, 95))})
            logging.info("latency %s %s: p50 %.1f ms", dataset, label, np.percentile(times, 50))


def markdown(data: dict) -> str:
    lines = []
    speed = data.get("speed", {})
    if speed:
        lines += ["| dataset | variant | passages/s (median) | rounds | vs plain ST | min / mean cosine to plain ST |",
                  "|---|---|---:|---|---:|---|"]
        for key, row in speed.items():
            dataset, label = key.split("|")
            ref = speed.get(f"{dataset}|minilm_l6 st_plain", {}).get("passages_per_second")
            ratio = f"{row['passages_per_second'] / ref:.2f}x" if ref and label.startswith("minilm_l6") else "-"
            cos = (f"{row['min_cosine_to_reference']:.4f} / {row['mean_cosine_to_reference']:.5f}"
                   if row.get("min_cosine_to_reference") is not None and label.startswith("minilm_l6") else "-")
            lines.append(f"| {dataset} | {label} | {row['passages_per_second']:.1f} | "
                         f"{', '.join(f'{v:.1f}' for v in row['rounds'])} | {ratio} | {cos} |")
        lines.append("")
    quality = data.get("quality", {})

    def lat(key, row):
        if key in data.get("latency", {}):
            return f"{data['latency'][key]['p50_ms']:.1f} / {data['latency'][key]['p95_ms']:.1f}"
        return f"({row['query_p50_ms'] or 0:.1f})"

    if quality:
        lines += ["| dataset | model backend | nDCG@10 | R@100 | Δ nDCG@10 vs torch | full encode passages/s | "
                  "query p50 / p95 ms | index bytes | peak MB |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for key, row in quality.items():
            dataset, label = key.split("|")
            ref = quality.get(f"{dataset}|minilm_l6 torch", {}).get("ndcg_at_10")
            delta = f"{row['ndcg_at_10'] - ref:+.4f}" if ref is not None and label.startswith("minilm_l6") else "-"
            lines.append(f"| {dataset} | {label} | {row['ndcg_at_10']:.4f} | {row['recall_at_100']:.4f} | {delta} | "
                         f"{row['encode_passages_per_second'] or 0:.1f} | {lat(key, row)} | "
                         f"{row['index_size_bytes'] or 0:,.0f} | {row['peak_memory_mb'] or 0:,.0f} |")
        lines.append("")
    for key, row in data.get("cache", {}).items():
        lines.append(f"Cache ({key}): first encode {row['first_encode_seconds']:.1f} s; identical second run "
                     f"{row['second_run_seconds']:.2f} s = {100 * row['second_run_ratio']:.2f}% of it; a new HNSW "
                     f"stage reading the cached embeddings {row['embeddings_hit_index_seconds']:.2f} s = "
                     f"{100 * row['embeddings_hit_ratio']:.2f}%.")
        lines.append("")
    ann = data.get("ann", {})
    if ann:
        # query latency left out: it is dominated by encoding the query (table 2, part 4)
        lines += ["| index (SciFact, minilm_l6 torch) | recall@10 vs flat | nDCG@10 | index bytes |",
                  "|---|---:|---:|---:|"]
        for key, row in ann.items():
            lines.append(f"| {key.split('|')[2]} | {row['ann_recall_at_10']:.4f} | {row['ndcg_at_10']:.4f} | "
                         f"{row['index_size_bytes'] or 0:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--root", default=os.environ.get("RETRIEVAL_LAB_DATA", "data"))
    parser.add_argument("--sample", type=int, default=96, help="passages per dataset for the speed rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["speed", "quality", "cache", "latency"],
                        choices=["speed", "quality", "cache", "latency"])
    parser.add_argument("--out", default="benchmarks/results/dense.json")
    parser.add_argument("--table", action="store_true", help="print the markdown tables of --out and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("sentence_transformers", "retrieval_lab", "faiss", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results = Results(Path(args.out))
    if not args.table:
        if "speed" in args.parts and not results.data.get("speed"):
            speed(results, args.datasets, args.root, args.sample, args.rounds)
        for step in PLAN:
            if step == "cache":
                if "cache" in args.parts and "scifact" in args.datasets and not results.data.get("ann"):
                    cache_and_ann(results, args.root)
            elif "quality" in args.parts and step[0] in args.datasets \
                    and f"{step[0]}|{step[1]} {step[2]}" not in results.data.get("quality", {}):
                quality_one(results, *step, args.root)
        if "latency" in args.parts:
            latency(results, args.datasets, args.root)
    print(markdown(results.data))


if __name__ == "__main__":
    main()
