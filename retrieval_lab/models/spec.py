"""What the store knows of a model without loading it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("sentence_transformers", "onnx_graph", "static", "cross_encoder")


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
