"""Data checks: all-caps queries over lower-case documents with a case-sensitive embedder, and a fused ranking below
its best input."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from retrieval_lab.cache import Cache
from retrieval_lab.config import compose_config
from retrieval_lab.dense import DenseRetriever, EmbedderConfig, IndexConfig
from retrieval_lab.pipeline import FIRST_STAGES, run_experiment
from retrieval_lab.pipeline.build import FirstStageEntry
from retrieval_lab.types import Facts
from retrieval_lab.pipeline.checks import upper_share
from tests.integration.sweep_util import tiny_beir


@pytest.fixture()
def shouting(tmp_path):
    """A tiny collection whose queries are all upper case, over lower-case documents."""
    folder = tiny_beir(tmp_path / "tiny", docs=60, queries=20)
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    (folder / "queries.jsonl").write_text("".join(json.dumps({**q, "text": q["text"].upper()}) + "\n"
                                                  for q in queries))
    return folder


def test_upper_share():
    assert upper_share(["ABC def", "12 GH"]) == pytest.approx(5 / 8)
    assert upper_share([]) == 0.0 and upper_share(["123 !?"]) == 0.0


def test_case_sensitivity_comes_from_the_tokenizer_and_the_option():
    def stage(**kw):
        return DenseRetriever(EmbedderConfig(**kw), IndexConfig(), Cache(enabled=False))

    assert stage(name="wordllama").facts.case_sensitive  # cased static vocabulary
    assert not stage(name="minilm_l6").facts.case_sensitive  # uncased WordPiece
    assert not stage(name="wordllama", lowercase=True).facts.case_sensitive
    assert stage(name="wordllama", lowercase=True).embedder.identity["lowercase"] is True
    assert "lowercase" not in stage(name="wordllama").embedder.identity  # keys of older embeddings still hold


def test_lowercase_encodes_the_lowercased_text(tmp_path):
    from retrieval_lab.dense import load_embedder

    plain = load_embedder(EmbedderConfig(name="wordllama"), Cache(tmp_path))
    lowered = load_embedder(EmbedderConfig(name="wordllama", lowercase=True), Cache(tmp_path))
    np.testing.assert_allclose(lowered.encode(["Vitamin D Deficiency"], "query"),
                               plain.encode(["vitamin d deficiency"], "query"), rtol=1e-6)


def test_all_caps_queries_warn_and_lowercase_fixes_them(shouting, tmp_path, caplog):
    base = [f"dataset.path={shouting}", "retriever=dense", "embedder=wordllama", f"cache.dir={tmp_path / 'c'}"]
    with caplog.at_level(logging.WARNING):
        cased = run_experiment(compose_config(base))
    assert "embedder wordllama is case-sensitive" in caplog.text and "embedder.lowercase=true" in caplog.text
    assert cased.extra_metrics["queries_upper_share"] == 1.0 and cased.extra_metrics["corpus_upper_share"] == 0.0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lowered = run_experiment(compose_config([*base, "embedder.lowercase=true"]))
    assert "case-sensitive" not in caplog.text
    assert lowered.evaluation.means["ndcg_at_10"] > cased.evaluation.means["ndcg_at_10"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_experiment(compose_config([*base, "embedder=minilm_l3"]))  # uncased: nothing to warn about
    assert "case-sensitive" not in caplog.text


class Reversed:
    """A useless first stage: every passage in reverse row order, whatever the query."""

    identity = {"name": "reversed"}
    facts = Facts()

    def stats(self):
        return {}

    def index(self, passages):
        self.n = len(passages)

    def search(self, texts, k):
        rows = np.arange(self.n)[::-1][:k]
        return np.tile(rows, (len(texts), 1)), np.tile(np.linspace(1, 0, len(rows)), (len(texts), 1))


def test_a_weak_fusion_input_warns_and_each_input_is_scored(data_root, tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(FIRST_STAGES, "reversed", FirstStageEntry(lambda node, cfg, key: None,
                                                                  lambda config, cache: Reversed()))
    cfg = compose_config([f"dataset.root={data_root}", "dataset=scifact", "retriever=hybrid",
                          f"cache.dir={tmp_path / 'c'}", "retriever.inputs.dense={name: reversed}"])
    with caplog.at_level(logging.WARNING):
        outcome = run_experiment(cfg)
    bm25, weak = outcome.extra_metrics["bm25_ndcg_at_10"], outcome.extra_metrics["dense_ndcg_at_10"]
    assert weak < 0.5 * bm25 and outcome.extra_metrics["fusion_gain_ndcg_at_10"] < 0
    assert "below its input bm25 alone" in caplog.text and "retriever.fusion.alpha=0,0.1," in caplog.text
    assert "best --cross-validate" in caplog.text
    base = [f"dataset.root={data_root}", "dataset=scifact", "retriever=hybrid", "embedder=wordllama",
            f"cache.dir={tmp_path / 'c'}"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        balanced = run_experiment(compose_config(base))
    gain = balanced.extra_metrics["fusion_gain_ndcg_at_10"]
    assert gain > 0 and balanced.evaluation.means["ndcg_at_10"] > balanced.extra_metrics["bm25_ndcg_at_10"]
    assert "fused ranking" not in caplog.text
    # an input that is not weak (above half the best) but a weight that leans on it: the fused ranking falls below
    # BM25 alone, which the check once let pass silently
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        leaning = run_experiment(compose_config([*base, "retriever.fusion.alpha=0.05"]))
    bm25, dense = leaning.extra_metrics["bm25_ndcg_at_10"], leaning.extra_metrics["dense_ndcg_at_10"]
    assert dense > 0.5 * bm25 and leaning.evaluation.means["ndcg_at_10"] < bm25
    assert "the fused ranking scores nDCG@10" in caplog.text and "below its input bm25 alone" in caplog.text
