"""Pieces both trainers share: base model resolution, weight hashes, CPU threads, peak memory, MLflow logging."""
from __future__ import annotations

import hashlib
import logging
import os
import resource
import time
from pathlib import Path

from retrieval_lab.errors import ModelNotFoundError

log = logging.getLogger(__name__)


def resolve_model(name: str, kind: str = "embedder") -> str:
    """The folder of a registered model, a zoo name, a local folder or a Hugging Face name (dense's resolution)."""
    from retrieval_lab.dense.embedders import resolve_model as resolve

    spec = resolve(name)
    if spec.kind not in ("sentence_transformers", "cross_encoder"):
        raise ModelNotFoundError(f"model '{name}' is a {spec.kind} model; training needs a transformer body "
                                 "(minilm_l6, a registered model, a local folder or a Hugging Face name)")
    return str(spec.path)


def weights_hash(folder: str | Path) -> str:
    """sha256 over a model folder's weight and config files (the identity of a trained model)."""
    folder = Path(folder)
    if not folder.exists():
        return hashlib.sha256(str(folder).encode()).hexdigest()  # a hub name: pinned by name only
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json", ".txt", ".onnx"} \
                and path.name not in {"README.md", "training_queries.json", "training.json"}:
            h.update(path.relative_to(folder).as_posix().encode())
            with open(path, "rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
    return h.hexdigest()


def set_threads(threads: int) -> None:
    if threads and threads > 0:
        import torch

        torch.set_num_threads(threads)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loss_curve(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(int(row["step"]), float(row["loss"])) for row in log_history if "loss" in row and "step" in row]


def log_training_run(kind: str, name: str, params: dict, metrics: dict, curve: list[tuple[int, float]],
                     tags: dict, artifacts: dict[str, str] | None = None, experiment: str = "training") -> str | None:
    """One MLflow run per training: params, loss per step, final metrics, tags (data hash, dataset)."""
    if os.environ.get("RETRIEVAL_LAB_NO_TRACKING") == "1":
        return None
    import tempfile

    from mlflow.entities import Metric, Param

    from retrieval_lab import tracking

    client = tracking.client()
    experiment_id = tracking.ensure_experiment(experiment)
    run = client.create_run(experiment_id, run_name=f"train-{kind} {name}",
                            tags={"role": f"train_{kind}", "model_name": name, **{k: str(v) for k, v in tags.items()}})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    try:
        flat = [Param(k, str(v)[:6000]) for k, v in tracking.flatten(params).items()]
        for start in range(0, len(flat), tracking.PARAM_BATCH):
            client.log_batch(run_id, params=flat[start:start + tracking.PARAM_BATCH])
        rows = [Metric("train_loss", loss, now, step) for step, loss in curve]
        rows += [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        for start in range(0, len(rows), 900):
            client.log_batch(run_id, metrics=rows[start:start + 900])
        if artifacts:
            with tempfile.TemporaryDirectory() as tmp:
                for fname, text in artifacts.items():
                    (Path(tmp) / fname).write_text(text)
                client.log_artifacts(run_id, tmp)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
