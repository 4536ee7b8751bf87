"""Diversification: reorder each query's top passages so near-duplicates do not fill a reader's context window.

`diversify=none` (the default) leaves the ranking alone; `diversify=mmr` reorders the top `diversify.depth`
passages of the fused or reranked ranking by maximal marginal relevance (`diversify.lambda`, diversify/mmr.py),
comparing passages by their embeddings. `DIVERSIFIERS` maps `diversify.name` to its config class (None: off).
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from retrieval_lab.config import check_choice, to_container, typed
from retrieval_lab.dense import EmbedderConfig
from retrieval_lab.dense.config import embedder_config
from retrieval_lab.diversify.mmr import MMRConfig, diversify, mmr_order
from retrieval_lab.errors import ConfigError

DIVERSIFIERS: dict[str, type | None] = {"none": None, "mmr": MMRConfig}


def diversify_config(node: Any, prefix: str = "diversify") -> MMRConfig | None:
    """The typed, validated config of `diversify.*`, or None when diversification is off (no node: an export
    written before the stage existed)."""
    data = dict(to_container(node) or {})
    name = data.get("name", "none")
    check_choice(f"{prefix}.name", name, DIVERSIFIERS)
    cls = DIVERSIFIERS[name]
    if cls is None:
        return None
    # `lambda` is the key users know (and a Python keyword): the field is `lambda_`, never a key
    keys = [f.name.rstrip("_") for f in dataclasses.fields(cls)]
    for key in data:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            raise ConfigError(f"{prefix}.{key}", "unknown key",
                              f"did you mean '{prefix}.{close[0]}'?" if close else f"known keys: {', '.join(keys)}")
    weight = data.pop("lambda", MMRConfig.lambda_)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(f"{prefix}.lambda", f"expected a number, got {weight!r}", f"set {prefix}.lambda=0.7")
    config = dataclasses.replace(typed(cls, data, prefix), lambda_=float(weight))
    config.validate(prefix)
    return config


def passage_embedder(config: MMRConfig, dense_embedders: list[tuple[EmbedderConfig, str]],
                     prefix: str = "diversify") -> tuple[EmbedderConfig, str]:
    """The embedder whose passage vectors MMR compares, and its config key: `diversify.embedder` when set, else the
    first dense stage's (`dense_embedders`: (typed embedder config, config key) of each, in chain order), whose
    vectors the cache already holds. A pipeline with neither is an error naming the fix."""
    if config.embedder is not None:
        return embedder_config(config.embedder, f"{prefix}.embedder"), f"{prefix}.embedder"
    if not dense_embedders:
        raise ConfigError(f"{prefix}.embedder", "MMR compares passages by their embeddings, and this pipeline has "
                          "no dense stage to take them from",
                          f"name an embedder for it: {prefix}.embedder={{name:minilm_l3}} (or any embedder=... "
                          "option's name), or use a dense or hybrid retriever")
    return dense_embedders[0]


__all__ = ["DIVERSIFIERS", "MMRConfig", "diversify", "diversify_config", "mmr_order", "passage_embedder"]
