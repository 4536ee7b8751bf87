"""Local ONNX export (no downloads, no `optimum`) and dynamic int8 quantization, stored as cache entries.

`optimum` downgrades transformers and breaks sentence-transformers 6.2, so the transformer body is exported with
`torch.onnx.export` behind a wrapper whose `forward(input_ids, attention_mask[, token_type_ids])` passes keyword
arguments (positional ones collide with `use_cache` in transformers 5). The graph returns token embeddings (pooling
and normalization stay in numpy, as in `OnnxEmbedder`) or, for a cross-encoder, its logits (the activation stays in
numpy, as in `rerank.cross_encoder`). The bytes are a cache entry keyed on the weights' sha256, the output, the opset,
torch and onnxruntime versions and the quantization, so an export happens once per machine and cache.
"""
from __future__ import annotations

import inspect
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

OPSET = 17
OUTPUTS = ("token_embeddings", "logits")  # a bi-encoder's transformer body | a cross-encoder's classification head


def export_transformer(folder: Path, out: Path, output: str = "token_embeddings") -> None:
    """Export the transformer of a sentence-transformers or cross-encoder folder to `out`, returning `output`."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    loader = AutoModelForSequenceClassification if output == "logits" else AutoModel
    model = loader.from_pretrained(str(folder), local_files_only=True)
    model.eval()
    # the signature, not co_varnames: transformers wraps forward in decorators. A cross-encoder's pairs need the
    # segment ids (one text is all segment 0, so a bi-encoder's vectors do not depend on them)
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            result = self.inner(**kwargs)
            return result.logits if output == "logits" else result.last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    args = (ids, torch.ones_like(ids)) + ((torch.zeros_like(ids),) if takes_types else ())
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch", 1: "sequence"} if output == "token_embeddings" else {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapper(model), args, str(out), input_names=names, output_names=[output],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8: weights of MatMul/Gemm quantized per channel, activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.INFO)  # onnxruntime.quantization logs every tensor on the root logger
    try:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        logging.disable(logging.NOTSET)


def onnx_model_bytes(spec, quantize: bool, cache, output: str = "token_embeddings") -> bytes:
    """The ONNX graph for `spec` (exported, and quantized when asked), from the cache or built now."""
    import onnxruntime
    import torch

    inputs = {"weights_sha256": spec.weights_sha256, "kind": spec.kind, "output": output, "opset": OPSET,
              "torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__,
              "quantize": "dynamic_int8_per_channel" if quantize else None}

    def compute():
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "model.onnx"
            if spec.kind == "onnx_graph":
                fp32 = Path(spec.path)
            else:
                export_transformer(Path(spec.path), fp32, output)
            target = fp32
            if quantize:
                target = Path(tmp) / "model.int8.onnx"
                quantize_int8(fp32, target)
            data = np.frombuffer(target.read_bytes(), dtype=np.uint8)
        seconds = time.perf_counter() - t0
        log.info("exported %s to ONNX%s in %.1f s", spec.ref, " (int8)" if quantize else "", seconds)
        return {"model": data}, None, {"seconds": seconds, "bytes": int(data.size)}

    if spec.kind == "onnx_graph" and not quantize:
        return Path(spec.path).read_bytes()  # the packaged graph as is
    entry = cache.get_or_compute("onnx_models", inputs, compute)
    return np.asarray(entry.arrays["model"]).tobytes()
