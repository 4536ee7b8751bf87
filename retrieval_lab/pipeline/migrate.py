"""Configs written before a stage's key was renamed still run: every stage is chosen by `name` now.

- fusion: `retriever.fusion.method` -> `retriever.fusion.name`;
- reranker: the implementation was `reranker.type` and `reranker.name` a label (for a registered reranker, its model
  name, which `model` defaulted to) -> `reranker.name` is the implementation and `reranker.model` the model.

`migrate_config` rewrites a stored config (an export's, a logged run's config.yaml) on read; `reject_renamed_keys`
stops a composed config that still holds an old key (a command line with `+`, a study or option file of one's own)
with an error naming the new key.
"""
from __future__ import annotations

import copy

from omegaconf import OmegaConf

from retrieval_lab.config import RENAMED_KEYS, renamed_key_error


def migrate_config(config: dict) -> dict:
    """A copy of a stored config with the renamed stage keys in their new form; a current config comes back equal."""
    config = copy.deepcopy(config)
    retriever = config.get("retriever")
    fusion = retriever.get("fusion") if isinstance(retriever, dict) else None
    if isinstance(fusion, dict) and "method" in fusion:
        method = fusion.pop("method")
        retriever["fusion"] = {"name": fusion.pop("name", method), **fusion}
    reranker = config.get("reranker")
    if isinstance(reranker, dict) and "type" in reranker:
        kind, label = reranker.pop("type"), reranker.get("name")
        if "none" in (kind, label):  # either switched the stage off
            config["reranker"] = {**reranker, "name": "none"}
        else:
            if label not in (None, kind) and not reranker.get("model"):
                reranker["model"] = label  # a label without a model named the model (`model` defaulted to `name`)
            config["reranker"] = {**reranker, "name": kind}
    return config


def reject_renamed_keys(cfg) -> None:
    """A ConfigError naming the new key for any old key left in a composed config."""
    node = cfg if OmegaConf.is_config(cfg) else OmegaConf.create(cfg)
    for old in RENAMED_KEYS:
        value = OmegaConf.select(node, old, default=None)
        if value is not None:
            raise renamed_key_error(old, value)
