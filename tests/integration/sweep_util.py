"""Helpers of the sweep tests: a tiny hand-made BEIR set, the CLI in a subprocess, MLflow queries."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "retrieval_lab.cli"]
WORDS = ("protein cell gene tumor virus vaccine immune brain neuron insulin glucose heart lung liver kidney "
         "bone muscle blood plasma enzyme receptor signal pathway mutation therapy drug trial dose risk infant "
         "aging sleep diet obesity stress memory cancer mouse human model study effect").split()


def tiny_beir(folder: Path, docs: int = 60, queries: int = 12, seed: int = 7) -> Path:
    """A BEIR folder whose BM25 rankings change with k1 and b (documents of very different lengths)."""
    rng = random.Random(seed)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        for i in range(docs):
            n = rng.choice([8, 20, 60, 150])
            text = " ".join(rng.choice(WORDS) for _ in range(n))
            fh.write(json.dumps({"_id": f"d{i}", "title": f"doc {i} {rng.choice(WORDS)}", "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"]
    with open(folder / "queries.jsonl", "w") as fh:
        for q in range(queries):
            fh.write(json.dumps({"_id": f"q{q}", "text": " ".join(rng.sample(WORDS, 3))}) + "\n")
            for d in rng.sample(range(docs), 4):
                rows.append(f"q{q}\td{d}\t{rng.choice([1, 2])}")
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def sweep(args, tmp_path: Path, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1", **(env_extra or {})}
    env.pop("RETRIEVAL_LAB_FAULT", None) if "RETRIEVAL_LAB_FAULT" not in (env_extra or {}) else None
    return subprocess.run([*CLI, "sweep", *args, f"hydra.sweep.dir={tmp_path / 'multirun'}"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=timeout)


def cli(args, cwd: Path, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1", **(env_extra or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def runs(uri: str, experiment: str, role: str | None = None):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return client, []
    query = f"tags.role = '{role}'" if role else ""
    return client, client.search_runs([exp.experiment_id], filter_string=query, max_results=1000)
