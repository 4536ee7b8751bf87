"""Backends `onnx` and `onnx_int8`: the transformer exported locally with torch.onnx.export (models/onnx_export.py,
dynamically quantized to int8 for `onnx_int8`) or a packaged graph, run with onnxruntime; pooling in numpy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from retrieval_lab.dense.backends.base import Embedder
from retrieval_lab.errors import ConfigError
from retrieval_lab.models.onnx_export import onnx_model_bytes
from retrieval_lab.models.tokenizer import hf_tokenizer


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


def load(config, spec, backend, max_tokens, cache) -> OnnxEmbedder:
    """The graph from the cache (exported on first use), its tokenizer and pooling."""
    if spec.kind == "onnx_graph":
        tokenizer = hf_tokenizer(spec.extra["tokenizer"])
        pooling = spec.extra.get("pooling", "mean")
    else:
        tokenizer = hf_tokenizer(spec.path)
        pooling = st_pooling(spec.path)
    data = onnx_model_bytes(spec, quantize=backend == "onnx_int8", cache=cache)
    return OnnxEmbedder(config, spec, backend, max_tokens or tokenizer.model_max_length, data, tokenizer, pooling)


def st_pooling(folder: Path) -> str:
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
