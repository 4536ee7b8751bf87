"""Training: the leakage guard, the registry's evaluation-time guard and the settings checked before any work (small
real training runs: tests/integration/test_train_models.py)."""
from __future__ import annotations

import json

import pytest

from retrieval_lab.errors import LeakageError
from retrieval_lab.training.data import check_leakage, training_queries
from retrieval_lab.types import Queries
from tests.unit.test_data_errors import HEADER, make_beir

TOPICS = ["insulin", "malaria", "telomere", "microbiome", "vaccine", "neuron", "tumor", "antibiotic", "cholesterol",
          "hemoglobin", "autophagy", "melanoma", "dopamine", "asthma", "collagen", "leptin"]


def toy_splits(folder):
    """16 documents, one per topic; train queries q0-q11, test queries q12-q15 (q15's text repeats q3's)."""
    corpus = [{"_id": f"d{i}", "title": f"{t} findings",
               "text": f"{t} levels change with {TOPICS[(i + 5) % 16]} exposure in patients; {t} is measured."}
              for i, t in enumerate(TOPICS)]
    queries = [{"_id": f"q{i}", "text": f"what controls {t} in patients"} for i, t in enumerate(TOPICS[:15])]
    queries.append({"_id": "q15", "text": f"what controls {TOPICS[3]} in patients"})
    make_beir(folder, corpus, queries, HEADER + "".join(f"q{i}\td{i}\t1\n" for i in range(12)), split="train")
    (folder / "qrels" / "test.tsv").write_text(HEADER + "".join(f"q{i}\td{i % 16}\t1\n" for i in range(12, 16)))
    return folder


def dataset_node(folder):
    from omegaconf import OmegaConf

    return OmegaConf.create({"name": folder.name, "root": str(folder.parent), "path": str(folder), "split": "train",
                             "ignore_identical_ids": False})


def test_training_on_the_evaluated_split_is_refused():
    q = Queries(["a", "b"], ["x", "y"])
    with pytest.raises(LeakageError, match="split being evaluated"):
        check_leakage("test", q, ["test"], {"test": q})
    with pytest.raises(LeakageError, match="also in the evaluated split"):
        check_leakage("train", q, ["test"], {"test": Queries(["b"], ["z"])})
    kept = check_leakage("train", q, ["test"], {"test": Queries(["c"], [" X "])})  # same text, another id
    assert kept.ids == ["b"]


def test_training_queries_drop_test_texts_and_hold_out_a_stable_part(tmp_path):
    folder = toy_splits(tmp_path / "toy")
    tq = training_queries(dataset_node(folder), "train", ["test"], holdout=0.25, seed=0)
    assert "q3" not in tq.train.ids + tq.heldout.ids and tq.dropped_same_text == 1
    assert not set(tq.train.ids) & set(tq.heldout.ids) and len(tq.train) + len(tq.heldout) == 11
    again = training_queries(dataset_node(folder), "train", ["test"], holdout=0.25, seed=0)
    assert again.heldout.ids == tq.heldout.ids and len(tq.heldout) > 0
    with pytest.raises(LeakageError):
        training_queries(dataset_node(folder), "train", ["train"])
    from retrieval_lab.data import load_dataset
    from retrieval_lab.training.data import write_heldout_split

    split = write_heldout_split(tq, tmp_path / "cache")  # a selection split sweeps can use
    node = dataset_node(folder)
    node.path, node.split = str(split), "heldout"
    held = load_dataset(node)
    assert held.name == "toy" and sorted(held.queries.ids) == sorted(tq.heldout.ids) and len(held.corpus) == 16


def test_a_registered_model_is_refused_on_queries_it_was_trained_on(tmp_path):
    from retrieval_lab.models.registry import check_config_models, lookup, register

    cache = tmp_path / "cache"  # the run's cache.dir, not $RETRIEVAL_LAB_CACHE: the guard looks where the run loads
    model = cache / "models" / "embedder" / "ft"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "modules.json").write_text("[]")
    (model / "training_queries.json").write_text(json.dumps({"ids": ["q1", "q2"], "heldout": ["q3"]}))
    register("embedder", "toy-ft", model, {"dataset": "toy", "split": "train"}, cache_root=cache,
             config={"name": "toy-ft", "model": "toy-ft"})
    assert lookup("embedder", "toy-ft", cache).training_query_ids == {"q1", "q2"}
    assert lookup("embedder", "toy-ft", tmp_path / "another-cache") is None
    assert (cache / "conf" / "embedder" / "toy-ft.yaml").exists()
    cfg = {"embedder": {"name": "toy-ft", "model": "toy-ft"}, "retriever": {"name": "bm25"},
           "cache": {"dir": str(cache)}}
    check_config_models(cfg, "toy", "test", ["q3", "q4"])  # held-out and test queries: fine
    check_config_models(cfg, "other", "train", ["q1"])  # another dataset's q1
    with pytest.raises(LeakageError, match="trained on 1 queries of toy split 'train'.*\n  fix: evaluate it on a "
                                           "split it was not trained on"):
        check_config_models(cfg, "toy", "train", ["q1", "q3"])
    nested = {"retriever": {"name": "hybrid", "inputs": {"d": {"name": "dense", "embedder": {"model": "toy-ft"}}}},
              "cache": {"dir": str(cache)}}
    with pytest.raises(LeakageError):
        check_config_models(nested, "toy", "train", ["q2"])
    elsewhere = {**cfg, "cache": {"dir": str(tmp_path / "another-cache")}}
    check_config_models(elsewhere, "toy", "train", ["q1"])  # no model of that name where this run looks
    (model / "training.json").write_text(json.dumps({"dataset": "toy"}))
    by_folder = {"reranker": {"name": "ce", "model": str(model)}, "cache": {"dir": str(tmp_path / "another-cache")}}
    with pytest.raises(LeakageError, match="reranker 'ft'"):  # named by its folder: found all the same
        check_config_models(by_folder, "toy", "train", ["q2"])


def test_positives_cut_short_are_a_seeded_sample_of_the_highest_grade():
    from types import SimpleNamespace

    from retrieval_lab.training.embedder import positives
    from retrieval_lab.types import Qrels

    grades = {f"d{i}": 1 for i in range(20)} | {"d7": 2}
    tq = SimpleNamespace(train=Queries(["q"], ["x"]), dataset=SimpleNamespace(qrels=Qrels({"q": grades})))
    samples = {s: positives(tq, 1, 3, seed=s)["q"] for s in range(6)}
    assert all(docs[0] == "d7" and len(set(docs)) == 3 for docs in samples.values())  # the grade-2 one first
    assert positives(tq, 1, 3, seed=0) == {"q": samples[0]}  # reproducible
    assert len({tuple(d) for d in samples.values()}) > 1  # not always the lowest ids
    assert sorted(positives(tq, 1, 0)["q"]) == sorted(grades)  # no cut: every relevant passage
    assert positives(tq, 2, 3)["q"] == ["d7"]


@pytest.mark.parametrize("settings, key", [
    (dict(loss="distill"), "teacher"),                        # distill without a teacher
    (dict(loss="bce", teacher="ce-scifact-bce"), "teacher"),  # a teacher nothing uses
    (dict(layers=-1), "layers"),
    (dict(loss="distill", teacher="t", negatives=0), "negatives"),
    (dict(negatives_from=""), "negatives_from"),
])
def test_reranker_training_settings_are_checked_before_any_work(settings, key):
    from retrieval_lab.errors import ConfigError
    from retrieval_lab.training.reranker import RerankerTrainConfig

    with pytest.raises(ConfigError) as caught:
        RerankerTrainConfig(**settings).validate()
    assert caught.value.key == key


def test_a_body_cannot_keep_more_layers_than_it_has():
    from types import SimpleNamespace

    from retrieval_lab.errors import ConfigError
    from retrieval_lab.training.reranker import keep_first_layers

    body = SimpleNamespace(encoder=SimpleNamespace(layer=[object()] * 6))
    model = SimpleNamespace(model=SimpleNamespace(base_model=body, config=SimpleNamespace(num_hidden_layers=6)))
    with pytest.raises(ConfigError, match="has 6 layers, cannot keep 7"):
        keep_first_layers(model, 7)
    keep_first_layers(model, 3)
    assert len(body.encoder.layer) == 3 and model.model.config.num_hidden_layers == 3


def test_models_saved_inside_the_cache_are_hashed_by_their_files(tmp_path):
    """Trained models live under `<cache>/models/` (often `.cache/...`): their identity must still cover their
    files, else every trained model would share one identity (and one embeddings / score cache)."""
    from retrieval_lab.models.hashing import weights_sha256

    hashes = set()
    for i in range(2):
        folder = tmp_path / ".cache" / "models" / f"m{i}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(bytes([i]) * 8)
        hashes.add(weights_sha256(folder))
    assert len(hashes) == 2 and "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" not in hashes


def test_mined_negatives_order_ties_by_document_id_whatever_order_the_first_stage_returns():
    """Equal scores are common (BM25 on short queries, duplicates in fused runs); the negatives, and so the rows
    sampled from them, must not depend on which tied document a first stage happened to list first."""
    from types import SimpleNamespace

    from retrieval_lab.training.negatives import unjudged
    from retrieval_lab.types import Qrels

    tq = SimpleNamespace(dataset=SimpleNamespace(qrels=Qrels({"q": {"d1": 1, "d9": 0}})))
    hits = [("d5", 3.0), ("d1", 2.0), ("d4", 1.0), ("d2", 1.0), ("d9", 1.0), ("d3", 1.0), ("d0", 0.5)]
    mined = unjudged(tq, {"q": hits}, 4)
    assert mined == {"q": ["d5", "d2", "d3", "d4"]}  # judged relevant d1 out; d9 (judged 0) may be a negative
    assert unjudged(tq, {"q": hits[::-1]}, 4) == mined


def test_seeds_make_one_training_per_seed_each_under_its_own_name():
    from retrieval_lab.errors import ConfigError
    from retrieval_lab.commands.train import train_config
    from retrieval_lab.training.common import per_seed

    dataset, settings, _ = train_config("reranker", ["seeds=[0,1,2]", "name=ce"])
    assert [(s.seed, s.name, s.seeds) for s in per_seed(settings, dataset.name, "reranker")] == [
        (0, "ce-seed0", None), (1, "ce-seed1", None), (2, "ce-seed2", None)]
    dataset, settings, _ = train_config("embedder", ["seeds=[3]"])
    assert [s.name for s in per_seed(settings, dataset.name, "embedder")] == ["minilm_l6-scifact-ft-seed3"]
    dataset, settings, _ = train_config("embedder", ["seed=4"])
    assert per_seed(settings, dataset.name, "embedder") == [settings]  # no seeds: the one training
    with pytest.raises(ConfigError, match="distinct whole numbers") as caught:
        per_seed(train_config("embedder", ["seeds=[1,1]"])[1], "scifact", "embedder")
    assert caught.value.key == "seeds"
