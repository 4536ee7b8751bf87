"""retriever=hybrid through the pipeline: inputs searched once, fusion settings replayed from the cached runs."""
from __future__ import annotations

import pytest

from retrieval_lab import pipeline
from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline.build import FirstStageEntry, read_bm25
from retrieval_lab.sparse import BM25
from tests.unit.test_data_errors import HEADER, make_beir

WORDS = ["protein", "cell", "gene", "virus", "cancer", "brain", "heart", "blood", "immune", "drug", "dose", "trial"]


def toy_dataset(folder):
    corpus = [{"_id": f"d{i}", "title": f"{WORDS[i]} study", "text": " ".join(WORDS[(i + j) % 12] for j in range(i % 4 + 2))}
              for i in range(12)]
    queries = [{"_id": f"q{i}", "text": f"{WORDS[i]} {WORDS[(i + 3) % 12]}"} for i in range(6)]
    qrels = HEADER + "".join(f"q{i}\td{i}\t1\nq{i}\td{(i + 3) % 12}\t1\n" for i in range(6))
    return make_beir(folder, corpus, queries, qrels)


@pytest.fixture()
def counting(monkeypatch):
    calls = {"index": 0, "search": 0}

    class Counting(BM25):
        def index(self, passages):
            calls["index"] += 1
            return super().index(passages)

        def search(self, queries, k):
            calls["search"] += 1
            return super().search(queries, k)

    monkeypatch.setitem(pipeline.FIRST_STAGES, "counting",
                        FirstStageEntry(read_bm25, lambda config, cache: Counting(config)))
    return calls


def hybrid_cfg(tmp_path, *extra):
    folder = toy_dataset(tmp_path / "toy")
    return compose_config([f"dataset.path={folder}", f"cache.dir={tmp_path / 'cache'}", "retriever=hybrid",
                           "retriever.inputs.bm25.name=counting",
                           "++retriever.inputs.dense={name: counting, k1: 2.0, b: 1.0}", "retriever.depth=8",
                           "eval.k=[1,3,5]", "eval.depth=5", *extra])


def test_sweeping_21_alphas_searches_each_input_once(tmp_path, counting):
    first = pipeline.run_experiment(hybrid_cfg(tmp_path))
    after_first = dict(counting)
    assert after_first["index"] == 2  # one index per input
    results = {}
    for i in range(21):
        alpha = round(i * 0.05, 2)
        outcome = pipeline.run_experiment(hybrid_cfg(tmp_path, f"retriever.fusion.alpha={alpha}"))
        assert outcome.timings["bm25_cache_hit"] == 1.0 and outcome.timings["dense_cache_hit"] == 1.0
        results[alpha] = outcome.run
    for method in ("rrf",):
        pipeline.run_experiment(hybrid_cfg(tmp_path, f"retriever.fusion.method={method}"))
    for norm in ("zscore", "max", "sum", "rank"):
        pipeline.run_experiment(hybrid_cfg(tmp_path, f"retriever.fusion.normalization={norm}"))
    assert counting == after_first  # no index() or search() after the first run
    assert first.run == results[compose_config(["retriever=hybrid"]).retriever.fusion.alpha]  # the default alpha
    assert len({tuple(tuple(d for d, _ in hits) for hits in r.values()) for r in results.values()}) > 1


def test_alpha_one_reproduces_the_first_input(tmp_path, counting):
    fused = pipeline.run_experiment(hybrid_cfg(tmp_path, "retriever.fusion.alpha=1.0"))
    alone = pipeline.run_experiment(compose_config([
        f"dataset.path={tmp_path / 'toy'}", f"cache.dir={tmp_path / 'cache'}", "retriever.name=counting",
        "eval.k=[1,3,5]", "eval.depth=5"]))
    assert {q: [d for d, _ in h] for q, h in fused.run.items()} == {q: [d for d, _ in h] for q, h in alone.run.items()}


def test_bad_hybrid_config_fails_before_any_work(tmp_path, counting):
    with pytest.raises(ConfigError) as err:
        pipeline.run_experiment(hybrid_cfg(tmp_path, "retriever.fusion.alpha=2"))
    assert err.value.key == "retriever.fusion.alpha"
    with pytest.raises(ConfigError) as err:
        pipeline.run_experiment(hybrid_cfg(tmp_path, "retriever.inputs.dense.name=colbert"))
    assert err.value.key == "retriever.inputs.dense.name"
    assert counting["index"] == 0


def test_a_hybrid_input_may_not_take_a_stage_label(tmp_path, counting):
    with pytest.raises(ConfigError) as err:
        pipeline.run_experiment(hybrid_cfg(tmp_path, "++retriever.inputs.units={name: counting}",
                                           "retriever.fusion.alpha=null", "retriever.fusion.weights=[1,1,1]"))
    assert err.value.key == "retriever.inputs.units" and counting["index"] == 0
