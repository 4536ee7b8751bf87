"""Cross-encoder scoring: a Hugging Face name, a local folder, or a name registered by `retrieval-lab train-reranker`.

Backends (`reranker.backend`): `torch` runs sentence-transformers' `CrossEncoder`; `onnx` exports the model once per
cache with `torch.onnx.export` (dense.onnx_export) and runs it with onnxruntime, giving the torch scores; `onnx_int8`
quantizes that graph dynamically (int8 weights, activations scaled per batch: about 2x faster here, scores up to
0.16 off fp32's on SciFact pairs, and dependent on the batch, which is one query's candidates both when evaluating
and searching). Loading is
lazy (factories stay cheap); pairs are scored in batches of similar length, and only pairs missing from the score
cache are computed."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from retrieval_lab.cache import Cache
from retrieval_lab.dense.embedders import hf_tokenizer, resolve_model
from retrieval_lab.dense.onnx_export import onnx_model_bytes
from retrieval_lab.errors import ConfigError, ModelNotFoundError
from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.rerank.scores import ScoreStore, cached_scores

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx_int8")
# the activation sentence-transformers applies to a one-logit model's output, by the name its config stores
ACTIVATIONS = {"torch.nn.modules.activation.Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
               "torch.nn.modules.linear.Identity": lambda x: x}
SIGMOID = "torch.nn.modules.activation.Sigmoid"  # sentence-transformers' default for num_labels=1


def activation_name(folder: Path) -> str:
    """Where sentence-transformers reads a cross-encoder's activation: its own config, then the model's config."""
    for name, keys in (("config_sentence_transformers.json", ("activation_fn",)),
                       ("config.json", ("sentence_transformers", "activation_fn")),
                       ("config.json", ("sbert_ce_default_activation_function",))):
        path = folder / name
        if not path.exists():
            continue
        node = json.loads(path.read_text())
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return SIGMOID


class CrossEncoderScorer:
    def __init__(self, model: str, batch_size: int = 32, max_length: int | None = None, threads: int | None = None,
                 cache_root: str | Path | None = None, cache_enabled: bool = True, backend: str = "torch"):

        root = resolve_cache_root(cache_root)  # the run's cache.dir: its registered models and its score store
        self.spec = resolve_model(model, root)  # files found and hashed, nothing loaded
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.backend = backend
        self.identity = {"model": self.spec.identity(), "max_length": max_length}
        if backend != "torch":  # int8 scores differ; torch keeps the score store it had before backends existed
            self.identity["backend"] = backend
        self.store = ScoreStore(root, self.identity, enabled=cache_enabled)
        self._cache = Cache(root, enabled=cache_enabled)  # where the ONNX export is kept
        self._model = None
        self._onnx = None

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import CrossEncoder

            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._model = CrossEncoder(str(self.spec.path), device="cpu", max_length=self.max_length)
            if self._model.num_labels != 1:
                raise ModelNotFoundError(f"{self.spec.ref} has {self._model.num_labels} output labels; a reranker "
                                         "needs one relevance logit (a CrossEncoder trained with num_labels=1)")
        return self._model

    @property
    def onnx(self):
        """(session, tokenizer, input names, activation) for the onnx backends, exported on first use."""
        if self._onnx is None:
            import onnxruntime as ort

            folder = Path(self.spec.path)
            activation = activation_name(folder)
            if activation not in ACTIVATIONS:
                raise ConfigError("reranker.backend", f"{self.spec.ref} applies the activation {activation}, which "
                                  f"the {self.backend} backend does not implement", "use reranker.backend=torch")
            data = onnx_model_bytes(self.spec, quantize=self.backend == "onnx_int8", cache=self._cache,
                                    output="logits")
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self.threads:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            labels = session.get_outputs()[0].shape[-1]
            if labels != 1:
                raise ModelNotFoundError(f"{self.spec.ref} has {labels} output labels; a reranker needs one "
                                         "relevance logit (a CrossEncoder trained with num_labels=1)")
            tokenizer = hf_tokenizer(folder)
            limit = self.max_length or min(tokenizer.model_max_length, 512)
            self._onnx = (session, tokenizer, limit, [i.name for i in session.get_inputs()], ACTIVATIONS[activation])
        return self._onnx

    def _onnx_batch(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        session, tokenizer, limit, names, activation = self.onnx
        batch = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation=True,
                          max_length=limit, return_tensors="np")
        feed = {name: batch[name].astype(np.int64) for name in names if name in batch}
        if "token_type_ids" in names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(batch["input_ids"], dtype=np.int64)
        return activation(session.run(None, feed)[0][:, 0].astype(np.float32))

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Model scores (after the model's activation), batched by length (no cache)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        order = np.argsort([len(q) + len(p) for q, p in pairs], kind="stable")
        ordered = [pairs[i] for i in order]
        if self.backend == "torch":
            scores = self.model.predict(ordered, batch_size=self.batch_size, show_progress_bar=False,
                                        convert_to_numpy=True)
        else:
            scores = np.concatenate([self._onnx_batch(ordered[start:start + self.batch_size])
                                     for start in range(0, len(ordered), self.batch_size)])
        out = np.empty(len(pairs), dtype=np.float32)
        out[order] = np.asarray(scores, dtype=np.float32).reshape(-1)
        return out

    def score(self, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, dict[str, float]]:
        """Scores of (query, passage) pairs, from the cache where present, and what they cost (`pairs_computed`,
        `seconds_per_pair`)."""
        return cached_scores(self.store, pairs, self.predict)
