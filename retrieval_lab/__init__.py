"""retrieval-lab: reproducible retrieval-quality experiments (chunking, BM25, dense, fusion, rerank) on MLflow.

`retrieval_lab.load_retriever("best.yaml").search("query", k=10)` loads a frozen configuration written by
`retrieval-lab best --export best.yaml`.
"""
from __future__ import annotations

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (dynamic version), `retrieval-lab --version` prints it


def load_retriever(path, overrides=()):
    """A `pipeline.Retriever` built from an exported config (YAML loaded safely; retrieval-lab components only)."""
    from retrieval_lab.pipeline.export import load_retriever as _load

    return _load(path, list(overrides))


__all__ = ["__version__", "load_retriever"]
