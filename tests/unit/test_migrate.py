"""Stage keys renamed to `name`: stored configs are migrated on read, old keys elsewhere are refused by name."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline import read_config
from retrieval_lab.pipeline.migrate import migrate_config, reject_renamed_keys
from retrieval_lab.rerank import reranker_config


def stored(fusion=None, reranker=None) -> dict:
    config = {"retriever": {"name": "hybrid", "depth": 100}, "eval": {"k": [10]}}
    if fusion is not None:
        config["retriever"]["fusion"] = fusion
    if reranker is not None:
        config["reranker"] = reranker
    return config


def test_fusion_method_becomes_name():
    old = stored({"method": "rrf", "alpha": 0.5, "k": 60})
    new = migrate_config(old)
    assert new["retriever"]["fusion"] == {"name": "rrf", "alpha": 0.5, "k": 60}
    assert old["retriever"]["fusion"]["method"] == "rrf"  # a copy: the export as read stays as written
    assert migrate_config(new) == new  # a current config comes back equal


@pytest.mark.parametrize("old,new", [
    ({"name": "none", "type": "none"}, {"name": "none"}),
    ({"name": "cross_encoder", "type": "cross_encoder", "model": "m", "depth": 20},
     {"name": "cross_encoder", "model": "m", "depth": 20}),
    # a label with a model (best-scifact's `name: ce-scifact-bce`): the label goes, the model stays
    ({"name": "ce-scifact-bce", "type": "cross_encoder", "model": "ce-scifact-bce", "depth": 50},
     {"name": "cross_encoder", "model": "ce-scifact-bce", "depth": 50}),
    # a label without a model named the model (`model` defaulted to `name`)
    ({"name": "my-ce", "type": "cross_encoder", "model": None}, {"name": "cross_encoder", "model": "my-ce"}),
    ({"name": "served", "type": "http", "model": "rerank-v3.5"}, {"name": "http", "model": "rerank-v3.5"}),
    # switched off by either key (`+experiments=best-scifact reranker=none` kept the experiment's name)
    ({"name": "ce-scifact-bce", "type": "none", "model": "ce-scifact-bce"}, {"name": "none", "model": "ce-scifact-bce"}),
    ({"name": "none", "type": "cross_encoder", "model": "m"}, {"name": "none", "model": "m"}),
])
def test_reranker_type_becomes_name_and_a_label_its_model(old, new):
    migrated = migrate_config(stored(reranker=old))["reranker"]
    assert migrated == new
    served = {"base_url": "http://127.0.0.1:7997"} if migrated["name"] == "http" else {}
    reranker_config({**migrated, **served})  # a valid reranker now


def test_an_old_key_left_in_a_config_is_an_error_naming_the_new_key():
    cfg = compose_config(["retriever=hybrid"])
    reject_renamed_keys(cfg)  # the current keys pass
    with pytest.raises(ConfigError, match="'retriever.fusion.method': renamed to retriever.fusion.name.*\n"
                                          "  fix: use retriever.fusion.name=rrf"):
        read_config(compose_config(["retriever=hybrid", "+retriever.fusion.method=rrf"]))
    with pytest.raises(ConfigError, match="'reranker.type': renamed to reranker.name"):
        reject_renamed_keys({"reranker": {"name": "x", "type": "cross_encoder"}})


@pytest.mark.parametrize("overrides,fix", [
    (["retriever=hybrid", "retriever.fusion.method=rrf"], "retriever.fusion.name=rrf"),
    (["retriever=hybrid", "retriever.fusion.method=rrf,convex"], "retriever.fusion.name=rrf,convex"),
    (["reranker.type=none"], "reranker.name=none"),
])
def test_a_command_line_with_an_old_key_gets_the_new_one_and_the_fix_composes(overrides, fix):
    with pytest.raises(ConfigError) as err:
        compose_config(overrides)
    assert str(err.value).endswith(f"fix: use {fix}")
    if "," not in fix:  # a sweep is for `sweep`; the rest composes as the fix says
        cfg = compose_config([*overrides[:-1], fix])
        assert OmegaConf.select(cfg, fix.split("=")[0]) == fix.split("=")[1]
