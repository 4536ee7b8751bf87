"""Fusion of first-stage runs (BM25 + dense, dense + dense, ...): methods and normalizations selected by name.

`FUSIONS[retriever.fusion.name](runs, config)` -> fused Run. Fusion is cheap and works on cached first-stage runs, so sweeping its
settings never searches or encodes again (see `pipeline.chain`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from retrieval_lab.config import check_choice, typed
from retrieval_lab.errors import ConfigError
from retrieval_lab.fusion.convex import convex
from retrieval_lab.fusion.normalization import NORMALIZATIONS, normalize
from retrieval_lab.fusion.rrf import rrf
from retrieval_lab.types import Run


@dataclass(frozen=True)
class FusionConfig:
    name: str = "convex"  # rrf | convex
    alpha: float | None = 0.6  # two inputs: weight of the first (the second gets 1 - alpha); as in the hybrid conf
    weights: list[float] | None = None  # one weight per input, in input order (overrides alpha)
    normalization: str = "minmax"  # convex only: minmax | zscore | max | sum | rank
    k: float = 60.0  # rrf only: rank offset

    def validate(self, inputs: int, prefix: str = "retriever.fusion") -> None:
        check_choice(f"{prefix}.name", self.name, FUSIONS)
        check_choice(f"{prefix}.normalization", self.normalization, NORMALIZATIONS)
        if self.weights is not None:
            if len(self.weights) != inputs:
                raise ConfigError(f"{prefix}.weights", f"{len(self.weights)} weights for {inputs} inputs",
                                  "give one weight per input, in the order of retriever.inputs")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ConfigError(f"{prefix}.weights", f"weights must be >= 0 and not all 0, got {self.weights}")
        elif self.alpha is not None and inputs == 2 and not 0 <= self.alpha <= 1:
            raise ConfigError(f"{prefix}.alpha", f"must be within [0, 1], got {self.alpha}")
        elif self.name == "convex" and self.alpha is not None and inputs != 2:
            raise ConfigError(f"{prefix}.alpha", f"alpha mixes two inputs, this hybrid has {inputs}",
                              f"set {prefix}.weights (one per input) and {prefix}.alpha=null")
        if self.name == "rrf" and not self.k >= 0:
            raise ConfigError(f"{prefix}.k", f"must be >= 0, got {self.k}")

    def input_weights(self, inputs: int) -> list[float]:
        if self.weights is not None:
            return [float(w) for w in self.weights]
        if inputs == 2 and self.alpha is not None:
            return [self.alpha, 1.0 - self.alpha]
        return [1.0 / inputs] * inputs


def _rrf(runs: list[Run], config: FusionConfig) -> Run:
    return rrf(runs, config.input_weights(len(runs)), config.k)


def _convex(runs: list[Run], config: FusionConfig) -> Run:
    return convex(runs, config.input_weights(len(runs)), config.normalization)


FUSIONS: dict[str, Callable[[list[Run], FusionConfig], Run]] = {"rrf": _rrf, "convex": _convex}


def fuse(runs: list[Run], config: FusionConfig) -> Run:
    """One fused run from several (a single run passes through unchanged)."""
    if len(runs) == 1:
        return runs[0]
    return FUSIONS[config.name](runs, config)


# ------------------------------------------------------------------------------------ the hybrid retriever's config

def hybrid_nodes(retriever_node, first_stages: dict) -> list[tuple[str, object]]:
    """(config key, node) of each input of `retriever=hybrid` (`retriever.inputs.<label>`), in config order."""
    inputs = retriever_node.get("inputs") or {}
    out = []
    for label, node in inputs.items():
        if node is None:  # removed with ~retriever.inputs.<label> or retriever.inputs.<label>=null
            continue
        name = node.get("name")
        if name == "hybrid":
            raise ConfigError(f"retriever.inputs.{label}.name", "a hybrid input cannot itself be a hybrid",
                              "list every first stage directly under retriever.inputs")
        check_choice(f"retriever.inputs.{label}.name", name, first_stages)
        out.append((f"retriever.inputs.{label}", node))
    if not out:
        raise ConfigError("retriever.inputs", "a hybrid retriever needs at least one input",
                          "e.g. retriever=hybrid (bm25 + dense) or +retriever.inputs.x={name: bm25}")
    return out


def hybrid_settings(retriever_node, inputs: int) -> tuple[FusionConfig | None, int | None]:
    """The fusion config and first-stage depth of a hybrid retriever; (None, None) for a single first stage."""
    if retriever_node.get("name") != "hybrid":
        return None, None
    config = typed(FusionConfig, retriever_node.get("fusion") or {}, "retriever.fusion")
    config.validate(inputs)
    depth = retriever_node.get("depth")
    if depth is not None and (not isinstance(depth, int) or depth <= 0):
        raise ConfigError("retriever.depth", f"must be a positive integer or null, got {depth!r}",
                          "passages each input retrieves (null: eval.depth)")
    return config, depth
__all__ = ["FusionConfig", "FUSIONS", "NORMALIZATIONS", "fuse", "normalize", "rrf", "convex", "hybrid_nodes", "hybrid_settings"]
