"""Cost of a cache hit (and of the write), before and after the cheap-read change, measured side by side in one run.

BEFORE is the old behaviour, kept here as `load_before` / `save_before`: `load` re-hashed every file of the entry with
sha256 before memory-mapping it, and `save` wrote each file with `np.save` and then read it back to hash it. AFTER is
the lab's `Cache.load` (sizes, first/last 64 KiB digests and .npy headers; no whole-file hash) and `Cache.save`
(hashes the bytes as they are written). `Cache.verify_entry` (what `retrieval-lab cache verify` runs per entry) is
timed too.

Arrays: (a) SciFact's MiniLM-L6 passage embeddings (5,183 x 384 float32, onnx_int8 backend), taken from the lab's
cache through the dense stage (`embed_texts`): the first run encodes the corpus (several CPU minutes) and fills it;
(b) a random 1,000,000 x 384 float32 array (1.5 GB). Each array is written into a temporary cache folder (deleted at
the end) once per variant; hits are timed with the OS page cache warm (one untimed load first), variants taking turns
repetition after repetition, and reported as medians.

    RETRIEVAL_LAB_DATA=<datasets root> nice -n 10 .venv/bin/python benchmarks/cache.py \
        [--reps 9] [--write-reps 3] [--rows 1000000] [--tmp-dir DIR] [--out benchmarks/results/cache.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from retrieval_lab.cache import MANIFEST, Cache, file_edges_sha256, file_sha256  # noqa: E402

STAGE = "embeddings"


def scifact_embeddings(data_root: str) -> np.ndarray:
    """The lab's SciFact MiniLM-L6 (onnx_int8) passage embeddings, from its cache (encoded on the first run)."""
    from retrieval_lab.cache import Cache as LabCache
    from retrieval_lab.chunking import whole_documents
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.dense import embed_texts, embedder_config, load_embedder

    cfg = compose_config(["dataset=scifact", f"dataset.root={data_root}", "retriever=dense", "embedder=minilm_l6",
                          "embedder.backend=onnx_int8", "embedder.progress=false", "tracking.enabled=false"])
    config = embedder_config(cfg.embedder)
    cache = LabCache()
    passages = whole_documents(load_dataset(Path(data_root) / "scifact", "test").corpus)
    vectors, meta, hit = embed_texts(None, config, passages.texts, "passage", cache,
                                     fingerprint=passages.fingerprint, load=lambda: load_embedder(config, cache))
    print(f"scifact embeddings {vectors.shape} {vectors.dtype}: cache {'hit' if hit else 'miss (encoded)'} "
          f"under {cache.root}", flush=True)
    return np.array(vectors)


def save_before(cache: Cache, key: str, arrays: dict[str, np.ndarray]) -> None:
    """The old `Cache.save`: np.save each array, then read the file back to hash it (manifest in the new format, so
    both variants' entries are readable by both loaders)."""
    final = cache._dir(STAGE, key)
    tmp = final.parent / f".tmp-{os.urandom(8).hex()}"
    tmp.mkdir(parents=True)
    files = {}
    for name, arr in arrays.items():
        path = tmp / f"{name}.npy"
        np.save(path, np.ascontiguousarray(arr), allow_pickle=False)
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = os.pread(fh.fileno(), 1 << 16, 0)
            tail = os.pread(fh.fileno(), 1 << 16, max(0, size - (1 << 16)))
        files[path.name] = {"bytes": size, "sha256": file_sha256(path),
                            "edges_sha256": hashlib.sha256(head + tail).hexdigest()}
    (tmp / MANIFEST).write_text(json.dumps({"stage": STAGE, "key": key, "files": files, "meta": {}}))
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)


def load_before(cache: Cache, key: str) -> dict[str, np.ndarray]:
    """The old `Cache.load`: a full sha256 of every file of the entry, then memory-map the arrays."""
    folder = cache._dir(STAGE, key)
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, record in manifest["files"].items():
        if file_sha256(folder / name) != record["sha256"]:
            raise RuntimeError(f"checksum mismatch in {name}")
    os.utime(folder / MANIFEST)
    return {name[:-4]: np.load(folder / name, mmap_mode="r", allow_pickle=False)
            for name in manifest["files"] if name.endswith(".npy")}


def load_after(cache: Cache, key: str) -> dict[str, np.ndarray]:
    entry = cache.load(STAGE, key)
    if entry is None:
        raise RuntimeError(f"cache entry {key[:12]} failed the cheap checks")
    return entry.arrays


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(label: str, array: np.ndarray, tmp_root: Path, reps: int, write_reps: int) -> dict:
    """Write the array once per variant (timed `write_reps` times, turns alternating), then time hits."""
    cache = Cache(tmp_root / label)
    arrays = {"embeddings": array}
    writes = {"before": [], "after": []}
    for rep in range(write_reps):
        for variant in ("before", "after"):
            key = f"{variant:0<64}"[:64]
            if variant == "before":
                writes[variant].append(timed(lambda: save_before(cache, key, arrays)))
            else:
                writes[variant].append(timed(lambda: cache.save(STAGE, key, arrays, meta={})))
            os.sync()  # flush dirty pages so the next write does not pay for this one's writeback
    keys = {"before": f"{'before':0<64}"[:64], "after": f"{'after':0<64}"[:64]}
    npy = cache._dir(STAGE, keys["after"]) / "embeddings.npy"
    loaders = {"before": lambda: load_before(cache, keys["before"]),
               "after": lambda: load_after(cache, keys["after"]),
               "edges": lambda: file_edges_sha256(npy, npy.stat().st_size),  # the part of "after" that hashes
               "verify": lambda: cache.verify_entry(cache._dir(STAGE, keys["after"]))}
    for check in ("before", "after"):  # warm the page cache and check the round trip once
        np.testing.assert_array_equal(np.asarray(loaders[check]()["embeddings"]), array)
    hits = {name: [] for name in loaders}
    for _ in range(reps):
        for name, fn in loaders.items():
            hits[name].append(timed(fn))
    if cache.verify_entry(cache._dir(STAGE, keys["after"])) is not None:
        raise RuntimeError("the new writer's entry fails verification")
    size = (cache._dir(STAGE, keys["after"]) / "embeddings.npy").stat().st_size
    med = {name: statistics.median(v) for name, v in {**hits, **{f"write_{k}": v for k, v in writes.items()}}.items()}
    row = {"shape": list(array.shape), "dtype": str(array.dtype), "file_bytes": size, "reps": reps,
           "write_reps": write_reps, "median_seconds": med, "hit_speedup": med["before"] / med["after"],
           "write_speedup": med["write_before"] / med["write_after"],
           "all_seconds": {**hits, **{f"write_{k}": v for k, v in writes.items()}}}
    shutil.rmtree(tmp_root / label)
    return row


def fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def markdown(rows: dict[str, dict]) -> str:
    lines = ["| array | file | hit before (full sha256) | hit after | speed-up | of which first/last 64 KiB digest | "
             "`cache verify` of the entry | write before (np.save + re-read) | write after (hash while writing) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows.items():
        m = r["median_seconds"]
        shape = " x ".join(f"{n:,}" for n in r["shape"])
        lines.append(f"| {label} ({shape} {r['dtype']}) | {r['file_bytes'] / 2**20:,.1f} MiB | "
                     f"{fmt_seconds(m['before'])} | {fmt_seconds(m['after'])} | {r['hit_speedup']:,.0f}x | "
                     f"{fmt_seconds(m['edges'])} | {fmt_seconds(m['verify'])} | {fmt_seconds(m['write_before'])} | "
                     f"{fmt_seconds(m['write_after'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="timed cache hits per variant")
    parser.add_argument("--write-reps", type=int, default=3, help="timed writes per variant")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large random array (384 columns)")
    parser.add_argument("--tmp-dir", help="where the temporary cache folders go (default: the system's temp dir)")
    parser.add_argument("--out", default="benchmarks/results/cache.json")
    args = parser.parse_args()
    data_root = os.environ.get("RETRIEVAL_LAB_DATA", "data")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime at start: {uptime}", flush=True)
    arrays = {"SciFact MiniLM-L6 embeddings": scifact_embeddings(data_root)}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="cache-bench-", dir=args.tmp_dir) as tmp:
        label = "SciFact MiniLM-L6 embeddings"
        rows[label] = measure("scifact", arrays.pop(label), Path(tmp), args.reps, args.write_reps)
        print(markdown(rows), flush=True)
        large = np.random.default_rng(0).standard_normal((args.rows, 384), dtype=np.float32)
        rows["random"] = measure("random", large, Path(tmp), args.reps, args.write_reps)
        del large
    rows[f"random {args.rows:,} x 384"] = rows.pop("random")
    uptime_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime at end: {uptime_end}\n")
    print(markdown(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"uptime_start": uptime, "uptime_end": uptime_end, "cpus": os.cpu_count(),
                               "rows": rows}, indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
