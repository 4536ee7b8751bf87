"""Training twice from cold gives the same weights: each training runs in its own process (another Python hash seed,
torch's own start state), into its own empty cache, on real SciFact training queries with BM25-mined negatives. A
cross-encoder's fresh head used to be drawn from torch's unseeded start state, so two such runs differed."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Small but real: a 1-layer body (the reranker) and a few steps on SciFact's train split.
TRAININGS = {
    "reranker": ["base=minilm_l6", "layers=1", "loss=bce", "negatives=3", "max_rows=16", "batch_size=8",
                 "max_length=32", "name=det-ce"],
    "embedder": ["base=minilm_l6", "max_pairs=16", "batch_size=8", "max_seq_length=32", "name=det-ft"],
}


def train_cold(kind: str, cache: Path, data_root: Path, hash_seed: int) -> tuple[str, dict, str]:
    """(sha256 of the saved weights, training.json, stderr) of one `retrieval-lab train-<kind>` in a new process."""
    env = dict(os.environ, RETRIEVAL_LAB_DATA=str(data_root), RETRIEVAL_LAB_NO_TRACKING="1",
               PYTHONHASHSEED=str(hash_seed), PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "retrieval_lab", f"train-{kind}", "dataset=scifact", "seed=0", "threads=2",
            *TRAININGS[kind], f"cache.dir={cache}"]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (cache / "models" / kind).iterdir()
    digest = hashlib.sha256()
    for weights in sorted(folder.rglob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest(), json.loads((folder / "training.json").read_text()), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_two_cold_trainings_give_identical_weights(kind, tmp_path, data_root):
    first, summary, log = train_cold(kind, tmp_path / "cache-a", data_root, hash_seed=1)
    again, summary_again, _ = train_cold(kind, tmp_path / "cache-b", data_root, hash_seed=2)
    assert summary["data_hash"] == summary_again["data_hash"]  # the same rows: negatives, sampling, shuffling
    assert first == again
    assert summary["curve"] == summary_again["curve"]
    # the thread count the weights depend on is stated in the log and recorded beside them
    assert f"train-{kind}: seed 0, 2 torch threads" in log
    assert summary["threads"] == 2 and summary["torch"] and summary["cpu_capability"]
