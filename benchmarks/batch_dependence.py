"""Does a text's vector depend on the texts encoded with it? MiniLM-L6 per backend: SciFact test queries encoded one
at a time against the same queries encoded in batches of 32 (the evaluation's way): max absolute difference and
lowest cosine. A backend with a difference cannot promise that `search` ranks exactly as the evaluation did.

    RETRIEVAL_LAB_DATA=<datasets> .venv/bin/python benchmarks/batch_dependence.py [--queries 100]
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.dense import EmbedderConfig, load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    texts = load_dataset(compose_config(["dataset=scifact"]).dataset).queries.texts[:args.queries]
    cache = Cache(tempfile.mkdtemp(prefix="batch-dependence-"))
    print(f"| backend | queries | max abs difference | lowest cosine |\n|---|---:|---:|---:|")
    for backend in ("torch", "onnx", "onnx_int8"):
        embedder = load_embedder(EmbedderConfig(name="minilm_l6", backend=backend, batch_size=32), cache)
        batched = embedder.encode(texts, "query", progress=False)
        alone = np.stack([embedder.encode([t], "query", progress=False)[0] for t in texts])
        print(f"| {backend} | {len(texts)} | {np.abs(batched - alone).max():.2g} | {(batched * alone).sum(1).min():.4f} |")


if __name__ == "__main__":
    main()
