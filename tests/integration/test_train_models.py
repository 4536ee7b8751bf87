"""Fine-tuning for real, on the hand-made toy collection: a small embedder and a small reranker trained from the bundled
MiniLM-L6 lower their loss and rank positives first, negatives mined from a named experiment's first stage
(WordLlama), and one registered model per seed (tests/unit/test_train.py: the checks before any training)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval_lab.training.data import training_queries
from tests.unit.test_train import TOPICS, dataset_node, toy_splits


@pytest.mark.slow
def test_small_embedder_training_lowers_loss_and_ranks_its_positives_first(tmp_path, mlflow_uri):
    from sentence_transformers import SentenceTransformer

    from retrieval_lab.training.embedder import EmbedderTrainConfig, train_embedder

    folder = toy_splits(tmp_path / "toy")
    cfg = EmbedderTrainConfig(name="toy-ft", epochs=3, batch_size=4, lr=1e-4, warmup=0.0, max_seq_length=64,
                              threads=1)
    summary = train_embedder(dataset_node(folder), cfg, cache_root=tmp_path / "cache")
    assert summary["folder"].startswith(str(tmp_path / "cache"))
    from retrieval_lab.models.resolve import resolve_model

    # one model identity: the base is keyed by the hash the dense stage's caches use
    assert summary["base_weights"] == resolve_model("minilm_l6").weights_sha256[:16]
    losses = [loss for _, loss in summary["curve"]]
    assert summary["pairs"] == 11 and summary["reused"] is False
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    model = SentenceTransformer(summary["folder"], device="cpu")
    tq = training_queries(dataset_node(folder), "train", ["test"])
    docs = {i: f"{t} findings {t} levels change" for i, t in enumerate(TOPICS)}
    passages = [d for d in tq.dataset.corpus.texts]
    titles = tq.dataset.corpus.titles
    texts = [f"{t} {x}" for t, x in zip(titles, passages)]
    q = model.encode(tq.train.texts, normalize_embeddings=True)
    p = model.encode(texts, normalize_embeddings=True)
    best = (q @ p.T).argmax(axis=1)
    positives = [int(qid[1:]) for qid in tq.train.ids]
    assert (best == np.array(positives)).mean() == 1.0, docs
    again = train_embedder(dataset_node(folder), cfg, tmp_path / "cache")  # same training: reused from the cache
    assert again["reused"] is True and again["folder"] == summary["folder"]
    import mlflow

    runs = mlflow.search_runs(experiment_names=["training"])
    assert len(runs) == 1 and runs["tags.role"][0] == "train_embedder" and "tags.data_hash" in runs


@pytest.mark.slow
def test_small_reranker_training_lowers_loss_and_scores_positives_above_negatives(tmp_path, mlflow_uri, monkeypatch):
    from pathlib import Path

    from scipy.stats import spearmanr

    from retrieval_lab.rerank.cross_encoder import CrossEncoderScorer
    from retrieval_lab.training.reranker import RerankerTrainConfig, build_rows, teacher_logits, train_reranker

    folder = toy_splits(tmp_path / "toy")
    cfg = RerankerTrainConfig(name="toy-ce", negatives=2, negative_depth=4, in_batch=1, epochs=4, batch_size=4,
                              lr=1e-4, head_lr=2e-3, warmup=0.0, max_length=64, threads=1)
    summary = train_reranker(dataset_node(folder), cfg, cache_root=tmp_path / "cache")
    losses = [loss for _, loss in summary["curve"]]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    # the registered name resolves under the cache root it was trained into, and its scores are stored there
    scorer = CrossEncoderScorer("toy-ce", max_length=64, cache_root=tmp_path / "cache")
    assert scorer.store.path.is_relative_to(tmp_path / "cache")
    rows = build_rows(training_queries(dataset_node(folder), "train", ["test"]), cfg)
    won = [scorer.score([(r[0], r[1])])[0][0] > max(scorer.score([(r[0], n) for n in r[2:]])[0]) for r in rows]
    assert np.mean(won) >= 0.9
    # the score cache: asking again computes nothing and returns the same scores
    pairs = [(r[0], r[1]) for r in rows]
    first, stats = scorer.score(pairs)
    assert stats["pairs_computed"] == 0 and np.allclose(first, scorer.score(pairs)[0])

    # `loss=distill teacher=toy-ce layers=2`: the student keeps 2 layers (saved so) and is fitted to the teacher's
    # logits on bce's pairs, so it ranks them as the teacher does (one test: the teacher's training is the cost)
    student_cfg = RerankerTrainConfig(name="toy-student", loss="distill", teacher="toy-ce", layers=2, negatives=2,
                                      negative_depth=4, epochs=8, batch_size=4, lr=2e-4, head_lr=2e-3, warmup=0.0,
                                      max_length=64, threads=1)
    rows = build_rows(training_queries(dataset_node(folder), "train", ["test"]), student_cfg, tmp_path / "cache")
    pairs = [(q, passage) for q, passage, _ in rows]
    assert [label for *_, label in rows] == pytest.approx(teacher_logits("toy-ce", pairs, 64, tmp_path / "cache"))
    student = train_reranker(dataset_node(folder), student_cfg, cache_root=tmp_path / "cache")
    assert json.loads((Path(student["folder"]) / "config.json").read_text())["num_hidden_layers"] == 2
    curve = [loss for _, loss in student["curve"]]
    assert np.mean(curve[-3:]) < np.mean(curve[:3]) / 2
    scores, _ = CrossEncoderScorer("toy-student", max_length=64, cache_root=tmp_path / "cache").score(pairs)
    assert spearmanr(scores, scorer.score(pairs)[0]).statistic > 0.7  # an untrained head: about 0
    # asked again, the student is reused without the teacher scoring a pair: its logits of these pairs are cached
    with monkeypatch.context() as patch:
        patch.setattr("sentence_transformers.CrossEncoder", lambda *a, **k: pytest.fail("the teacher scored again"))
        assert train_reranker(dataset_node(folder), student_cfg, cache_root=tmp_path / "cache")["reused"]


def test_negatives_come_from_the_named_experiments_first_stage(tmp_path, monkeypatch):
    """negatives_from=<experiment>: the experiment's own first stage ranks the candidates (its reranker off), judged
    documents are left out; an experiment over BM25 mines what bm25 does, a dense one the dense ranking's top."""
    from retrieval_lab.commands.train import experiment_first_stage
    from retrieval_lab.config import compose_config
    from retrieval_lab.errors import ConfigError
    from retrieval_lab.pipeline import Retriever
    from retrieval_lab.training.negatives import bm25_negatives, mine_negatives

    folder = toy_splits(tmp_path / "toy")
    studies = tmp_path / "config" / "experiments"
    studies.mkdir(parents=True)
    dataset = f"dataset:\n  name: toy\n  path: {folder}\n  split: train\n"
    (studies / "toy-bm25.yaml").write_text("# @package _global_\ndefaults:\n  - override /retriever: bm25\n"
                                          + dataset)
    (studies / "toy-dense.yaml").write_text("# @package _global_\ndefaults:\n  - override /retriever: dense\n"
                                           "  - override /embedder: wordllama\n  - override /reranker: cross_encoder\n"
                                           + dataset + "reranker:\n  model: no-such-reranker\n")
    (studies / "other-data.yaml").write_text("# @package _global_\ndataset:\n  name: scifact\n")
    monkeypatch.setenv("RETRIEVAL_LAB_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(tmp_path / "cache"))
    tq = training_queries(dataset_node(folder), "train", ["test"])

    # each toy query matches its own document and one other; the rest score 0 and tie (in another order here)
    from_bm25, bm25 = mine_negatives(tq, "toy-bm25", 5, first_stage=experiment_first_stage), bm25_negatives(tq, 5)
    assert {q: docs[0] for q, docs in from_bm25.items()} == {q: docs[0] for q, docs in bm25.items()}
    # its reranker names no model: it must not be built
    dense = mine_negatives(tq, "toy-dense", 5, first_stage=experiment_first_stage)
    cfg = compose_config(["+experiments=toy-dense", "reranker=none"])
    ranked = Retriever(cfg, tq.dataset.corpus).retrieve(tq.train).documents
    for qid in tq.train.ids:
        judged = set(tq.dataset.qrels[qid])
        in_order = sorted(ranked[qid], key=lambda hit: (-hit[1], hit[0]))  # ties by document id
        assert dense[qid] == [d for d, _ in in_order if d not in judged][:5] and len(dense[qid]) == 5
    assert dense != from_bm25
    with pytest.raises(ConfigError, match="(?s)no experiment 'nope'.*toy-bm25") as caught:
        mine_negatives(tq, "nope", 5, first_stage=experiment_first_stage)
    assert caught.value.key == "negatives_from"
    with pytest.raises(ConfigError, match="runs on dataset 'scifact', the training data is 'toy'"):
        mine_negatives(tq, "other-data", 5, first_stage=experiment_first_stage)
    # training sits below the pipeline: without the command's first stage, an experiment's negatives are an error
    with pytest.raises(ConfigError, match="no first stage was given") as caught:
        mine_negatives(tq, "toy-bm25", 5)
    assert caught.value.key == "negatives_from"


@pytest.mark.slow
def test_train_embedder_with_seeds_registers_one_model_per_seed(tmp_path, monkeypatch, capsys):
    from retrieval_lab.commands.train import main_train
    from retrieval_lab.models.registry import lookup

    folder = toy_splits(tmp_path / "toy")
    monkeypatch.setenv("RETRIEVAL_LAB_NO_TRACKING", "1")
    cache = tmp_path / "cache"
    assert main_train("embedder", [f"dataset.path={folder}", "dataset.name=toy", "seeds=[0,1]", "batch_size=4",
                                   "max_seq_length=32", "threads=1", "name=toy-ft", f"cache.dir={cache}"]) == 0
    err = capsys.readouterr().err
    assert "train-embedder: seed 0, 1 torch threads" in err and "train-embedder: seed 1, 1 torch threads" in err
    models = [lookup("embedder", f"toy-ft-seed{s}", cache) for s in (0, 1)]
    assert all(models) and models[0].folder != models[1].folder  # the seed is part of the training's identity
    weights = [(m.folder / "model.safetensors").read_bytes() for m in models]
    assert weights[0] != weights[1]
