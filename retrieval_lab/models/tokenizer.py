"""A model's Hugging Face tokenizer without loading the model (to count tokens, to feed an ONNX graph)."""
from __future__ import annotations

from pathlib import Path

from retrieval_lab.models.spec import ModelSpec


def hf_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def static_tokenizer(file: Path):
    """A `tokenizers` JSON file (a static model's) as a Hugging Face tokenizer."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(str(file)))


def spec_tokenizer(spec: ModelSpec):
    """The tokenizer `spec`'s model runs with; None if its folder has none."""
    if spec.kind == "static":
        return static_tokenizer(spec.extra["tokenizer"])
    if spec.kind == "onnx_graph":
        return hf_tokenizer(spec.extra["tokenizer"])
    try:
        return hf_tokenizer(spec.path)
    except (OSError, ValueError):
        return None
