"""One override grammar (Hydra's compose) for run configs, exports and trainers; one cache root for registered models'
config options; what `evaluate --config` says about a changed pipeline."""
from __future__ import annotations

import copy

import pytest
from omegaconf import OmegaConf

from retrieval_lab.commands.train import train_config
from retrieval_lab.config import cache_dirs_in, compose_config, compose_over
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline.export import (UnsafeConfigError, changes_against_export, comparison_lines,
                                           config_from_export)

FINGERPRINT = "ab" * 32


def recorded(overrides=()) -> dict:
    """A run's config as `config.yaml` logs it: resolved, plain."""
    return OmegaConf.to_container(compose_config(list(overrides)), resolve=True)


def export_of(config: dict, metrics: dict | None = None) -> dict:
    return {"format": "retrieval-lab/export-v1", "run_id": "r1", "config": config,
            "dataset": {"name": "scifact", "split": "test", "hash": FINGERPRINT},
            "metrics": metrics if metrics is not None else {"ndcg_at_10": 0.6762, "recall_at_100": 0.913}}


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def test_a_group_option_brings_its_own_defaults_and_replaces_the_recorded_node():
    body = recorded(["retriever.k1=1.2"])
    hybrid = plain(compose_over(body, ["retriever=hybrid", "embedder=wordllama"]))
    assert set(hybrid["retriever"]["inputs"]) == {"bm25", "dense"}  # hybrid.yaml's defaults list
    assert hybrid["retriever"]["inputs"]["bm25"]["k1"] == 0.9 and "k1" not in hybrid["retriever"]
    assert hybrid["embedder"]["name"] == "wordllama" and hybrid["embedder"]["batch_size"] == 256
    assert {k: v for k, v in hybrid.items() if k not in ("retriever", "embedder")} == \
        {k: v for k, v in body.items() if k not in ("retriever", "embedder")}
    assert plain(compose_over(body, ["retriever=bm25"]))["retriever"]["k1"] == 0.9  # the option, not a merge
    chunked = plain(compose_over(body, ["chunker=fixed_tokens", "chunker.size=64"]))["chunker"]
    assert (chunked["name"], chunked["size"], chunked["overlap"]) == ("fixed_tokens", 64, 16)
    piped = plain(compose_over(body, ["+pipeline=hybrid_wordllama"]))  # one option overriding three groups
    assert piped["retriever"]["name"] == "hybrid" and piped["embedder"]["name"] == "wordllama"
    assert "reranker" not in plain(compose_over(body, ["~reranker"]))
    assert plain(compose_over(body, [])) == body


def test_value_overrides_follow_the_grammar_of_run():
    body = recorded()
    cfg = plain(compose_over(body, ["retriever.b=0.7", "eval.k=[10]", "+retriever.note=x", "dataset.split=train"]))
    assert cfg["retriever"]["b"] == 0.7 and cfg["eval"]["k"] == [10] and cfg["retriever"]["note"] == "x"
    assert cfg["dataset"]["split"] == "train"
    with pytest.raises(ConfigError, match=r"(?s)Could not override .retriever.note.*use \+retriever.note=x"):
        compose_over(body, ["retriever.note=x"])  # a new key needs +, as in `retrieval-lab run`
    with pytest.raises(ConfigError, match="Could not find 'retriever/nope'"):
        compose_over(body, ["retriever=nope"])
    with pytest.raises(ConfigError, match="cannot parse"):
        compose_over(body, ["retriever.k1=[1"])


def register_option(cache_dir, name: str, node: str) -> None:
    folder = cache_dir / "conf" / "embedder"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(node)


def test_registered_options_are_found_under_the_cache_dir_of_the_command(tmp_path):
    cache = tmp_path / "my cache, 2"  # a folder name Hydra's grammar must quote
    register_option(cache, "toy-ft", "name: toy-ft\nmodel: toy-ft\nmax_tokens: 64\n")
    assert cache_dirs_in([f"cache.dir='{cache}'", "retriever=dense"]) == [str(cache)]
    assert cache_dirs_in(["cache.dir=/a,/b"]) == ["/a", "/b"] and cache_dirs_in(["retriever=bm25"]) == [None]
    cfg = compose_config([f"cache.dir='{cache}'", "retriever=dense", "embedder=toy-ft"])
    assert cfg.embedder.model == "toy-ft" and cfg.cache.dir == str(cache)
    with pytest.raises(ConfigError, match="embedder/toy-ft"):  # another cache root: not registered there
        compose_config(["retriever=dense", "embedder=toy-ft"])

    body = recorded()
    body["cache"]["dir"] = str(cache)  # the export's cache: its registered models are options
    cfg = config_from_export(export_of(body), ["retriever=dense", "embedder=toy-ft"])
    assert cfg.embedder.max_tokens == 64 and cfg.cache.dir == str(cache)
    body["cache"]["dir"] = str(tmp_path / "gone")  # recorded elsewhere: the cache.dir given wins
    cfg = config_from_export(export_of(body), ["embedder=toy-ft", f"cache.dir='{cache}'"])
    assert cfg.embedder.name == "toy-ft" and cfg.cache.dir == str(cache)


def test_an_option_naming_foreign_code_is_refused(tmp_path):
    register_option(tmp_path, "evil", "name: evil\n_target_: os.system\n")
    body = recorded()
    body["cache"]["dir"] = str(tmp_path)
    with pytest.raises(UnsafeConfigError, match="os.system"):
        config_from_export(export_of(body), ["embedder=evil"])


def test_locations_follow_this_machine_unless_given(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "scifact").mkdir(parents=True)
    body = recorded()
    body["dataset"]["root"] = str(tmp_path / "elsewhere")
    body["cache"]["dir"] = str(tmp_path / "gone")
    body["tracking"]["uri"] = "sqlite:////nowhere/mlflow.db"
    cfg = config_from_export(export_of(body))
    assert cfg.dataset.root == str(tmp_path / "data") and cfg.tracking.uri is None
    assert cfg.cache.dir != str(tmp_path / "gone")
    cfg = config_from_export(export_of(body), [f"dataset.root={tmp_path / 'mine'}", f"cache.dir={tmp_path / 'c'}"])
    assert cfg.dataset.root == str(tmp_path / "mine") and cfg.cache.dir == str(tmp_path / "c")
    assert changes_against_export(export_of(body), cfg, FINGERPRINT) == []  # only places moved


def test_changed_keys_are_named_and_reproduced_is_said_only_of_an_unchanged_pipeline():
    body = recorded()
    export = export_of(body)
    same = changes_against_export(export, compose_over(body, ["retriever=bm25"]), FINGERPRINT)
    assert same == []
    assert comparison_lines(export, same, {"ndcg_at_10": 0.6762, "recall_at_100": 0.913}, "ndcg_at_10") == \
        ["  vs export      no key changed; 2 metrics of run r1 reproduced: identical"]
    off = comparison_lines(export, same, {"ndcg_at_10": 0.6763, "recall_at_100": 0.913}, "ndcg_at_10")
    assert "reproduced" not in " ".join(off) and "1 of 2 metrics differ" in off[0]

    hybrid = changes_against_export(export, compose_over(body, ["retriever=hybrid", "embedder=wordllama"]),
                                    FINGERPRINT)
    assert [str(c) for c in hybrid[:2]] == ["retriever.name: bm25 -> hybrid", "embedder.name: minilm_l6 -> wordllama"]
    assert "retriever.inputs.bm25.k1: (absent) -> 0.9" in map(str, hybrid)
    lines = comparison_lines(export, hybrid, {"ndcg_at_10": 0.70, "recall_at_100": 0.913}, "ndcg_at_10")
    assert f"{len(hybrid)} keys changed" in lines[0] and f"and {len(hybrid) - 6} more" in lines[0]
    assert "reproduced" not in " ".join(lines)
    assert "changed pipeline" in lines[1] and "ndcg_at_10 0.6762 -> 0.7000 (+0.0238)" in lines[1]
    unchanged_numbers = comparison_lines(export, hybrid, {"ndcg_at_10": 0.6762, "recall_at_100": 0.913}, "x")
    assert "reproduced" not in " ".join(unchanged_numbers) and "all 2 metrics equal" in unchanged_numbers[1]


def test_dataset_changes_count_unless_the_data_only_moved():
    body = recorded()
    export = export_of(body)
    moved = compose_over(body, ["dataset.path=/new/place/scifact"])
    assert changes_against_export(export, moved, FINGERPRINT) == []
    other = changes_against_export(export, moved, "cd" * 32)
    assert [c.key for c in other] == ["dataset.path", "dataset content (hash)"]
    assert "metrics not compared" in comparison_lines(export, other, {"ndcg_at_10": 0.3}, "ndcg_at_10")[-1]
    nf = changes_against_export(export, compose_over(body, ["dataset=nfcorpus"]), "cd" * 32)
    assert str(nf[0]) == "dataset.name: scifact -> nfcorpus"
    assert changes_against_export(export, compose_over(body, ["tracking.experiment=x", "cache.enabled=false"]),
                                  FINGERPRINT) == []


def test_trainer_configs_are_composed_and_typed():
    from retrieval_lab.training.embedder import EmbedderTrainConfig
    from retrieval_lab.training.reranker import RerankerTrainConfig

    # conf/train_*.yaml list every setting with the dataclass's default
    assert train_config("embedder")[1] == EmbedderTrainConfig()
    assert train_config("reranker")[1] == RerankerTrainConfig()
    dataset, settings, _ = train_config("embedder", ["dataset=scifact", "split=train", "base=minilm_l6", "holdout=0.2",
                                                     "epochs=2", "lr=4e-5", "name=minilm_l6-scifact-ft"])
    assert dataset.name == "scifact" and settings.lr == 4e-5 and settings.epochs == 2.0
    assert isinstance(settings.epochs, float) and settings.name == "minilm_l6-scifact-ft"
    dataset, settings, _ = train_config("embedder", ["dataset=nfcorpus", "dataset.split=dev", "lr=5e-5",
                                                     "eval_splits=[test]"])
    assert (dataset.name, settings.split, settings.lr, settings.eval_splits) == ("nfcorpus", "dev", 5e-5, ["test"])
    _, settings, cache_dir = train_config("reranker", ["eval_splits=[test,dev]", "head_lr=null", "cache.dir=/x/y"])
    assert settings.eval_splits == ["test", "dev"] and settings.head_lr is None and cache_dir == "/x/y"
    with pytest.raises(ConfigError, match="config key 'lr': expected a number"):
        train_config("embedder", ["lr=fast"])
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        train_config("embedder", ["+lrr=1e-5"])
    with pytest.raises(ConfigError, match="lrr"):
        train_config("embedder", ["lrr=1e-5"])


def test_check_targets_still_guards_the_recorded_body():
    body = copy.deepcopy(recorded())
    body["retriever"]["_target_"] = "subprocess.run"
    with pytest.raises(UnsafeConfigError, match="config.retriever._target_"):
        config_from_export(export_of(body), ["retriever=bm25"])  # refused even though the override replaces it
