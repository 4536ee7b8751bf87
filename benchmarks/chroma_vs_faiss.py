"""Embedded Chroma (index=chroma) beside FAISS HNSW with the same parameters: build time, query p50 and recall@10
against exact (flat) search, on SciFact and a synthetic SciFact-shaped corpus (benchmarks/scale.py's generator).

    nice -n 10 python benchmarks/chroma_vs_faiss.py --work /tmp/retrieval-lab-scale [--sizes 100000]

Vectors: the static WordLlama embedder (256-d, normalized), title + text, through the lab's embeddings cache under
--work (so a rerun encodes nothing). Both indexes are built afresh over the same vectors, inner product, one after the
other in this process; queries are searched one at a time (the latency a live search sees) after one warm-up query,
FAISS on one thread (the lab's `query_threads` default), Chroma as it comes. Recall@10: the share of the exact top 10
each index returns, over the queries (SciFact's 300 test queries; the synthetic corpus's 200). Prints a Markdown
table with the load averages, and writes it as JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scale import ensure_corpus, load_average  # noqa: E402

SETTINGS = [(32, 200, 256), (16, 100, 32)]  # (M, ef_construction, ef_search): the lab's defaults, and a cheap one


def vectors_of(folder: Path, cache_dir: Path):
    from retrieval_lab.cache import Cache
    from retrieval_lab.data import load_dataset
    from retrieval_lab.dense import embed_texts
    from retrieval_lab.dense import EmbedderConfig, load_embedder

    dataset = load_dataset(folder)
    config = EmbedderConfig(name="wordllama", progress=False)
    cache = Cache(cache_dir)
    texts = [f"{t} {x}".strip() for t, x in zip(dataset.corpus.titles, dataset.corpus.texts)]
    docs, _, _ = embed_texts(None, config, texts, "passage", cache, load=lambda: load_embedder(config, cache))
    queries, _, _ = embed_texts(None, config, list(dataset.queries.texts), "query", cache,
                                load=lambda: load_embedder(config, cache))
    return np.ascontiguousarray(docs, dtype=np.float32), np.ascontiguousarray(queries, dtype=np.float32)


def p50_ms(search, queries: np.ndarray) -> tuple[float, np.ndarray]:
    search(queries[:1])
    times, rows = [], []
    for query in queries:
        t0 = time.perf_counter()
        found = search(query[None, :])
        times.append((time.perf_counter() - t0) * 1000)
        rows.append(found[0])
    return float(np.median(times)), np.vstack(rows)


def measure(name: str, docs: np.ndarray, queries: np.ndarray) -> list[dict]:
    import faiss

    from retrieval_lab.dense import chroma_index
    from retrieval_lab.dense.index import IndexConfig, ann_recall, build_index, exact_search, search

    truth = exact_search(docs, queries, 10)
    out = []
    for M, efc, efs in SETTINGS:
        config = IndexConfig(name="hnsw", M=M, ef_construction=efc, ef_search=efs)
        t0 = time.perf_counter()
        index = build_index(docs, config, progress=False)
        built = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        p50, rows = p50_ms(lambda q: search(index, q, 10)[0], queries)
        faiss.omp_set_num_threads(2)
        out.append({"corpus": name, "vectors": len(docs), "index": "faiss hnsw", "M": M, "ef_construction": efc,
                    "ef_search": efs, "build_s": built, "query_p50_ms": p50,
                    "recall_at_10": ann_recall(rows, truth, 10), "load": load_average()})
        del index
        folder = Path(tempfile.mkdtemp(prefix="chroma-bench-"))
        try:
            t0 = time.perf_counter()
            chroma_index.build(docs, folder, M, efc, efs, "ip")
            built = time.perf_counter() - t0
            index = chroma_index.ChromaIndex(folder, "ip")
            p50, rows = p50_ms(lambda q: index.search(q, 10)[0], queries)
            out.append({"corpus": name, "vectors": len(docs), "index": "chroma", "M": M, "ef_construction": efc,
                        "ef_search": efs, "build_s": built, "query_p50_ms": p50,
                        "recall_at_10": ann_recall(rows, truth, 10), "load": load_average()})
            del index
            chroma_index._release()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(json.dumps(out[-2:]), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/retrieval-lab-scale"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[100000], help="synthetic corpus sizes")
    parser.add_argument("--data", type=Path, default=None, help="datasets root (default: $RETRIEVAL_LAB_DATA)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/chroma_vs_faiss.json"))
    args = parser.parse_args()
    from retrieval_lab.data import data_root

    root = args.data or data_root()
    cache_dir = args.work / "chroma-bench-cache"
    rows = measure("scifact", *vectors_of(root / "scifact", cache_dir))
    for size in args.sizes:
        folder = args.work / f"synthetic-scifact-{size}"
        ensure_corpus(folder, "scifact", size, root)
        rows += measure(f"synthetic {size:,}", *vectors_of(folder, cache_dir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print("| corpus | vectors | index | M / ef_construction / ef_search | build s | query p50 ms | recall@10 vs flat "
          "| load |\n|---|---:|---|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['corpus']} | {r['vectors']:,} | {r['index']} | {r['M']} / {r['ef_construction']} / "
              f"{r['ef_search']} | {r['build_s']:.1f} | {r['query_p50_ms']:.2f} | {r['recall_at_10']:.3f} | "
              f"{r['load']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
