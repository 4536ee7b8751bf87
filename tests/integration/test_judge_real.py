"""Pooled judging on SciFact: the pool is exactly what the evaluated configurations retrieved, and re-scoring them
on the judged set replays their cached first-stage runs, logging judged_at_10 and pool_depth beside the metric."""
from __future__ import annotations

import json

import pytest

from tests.integration.sweep_util import runs, sweep

QUESTIONS = ["1", "3", "5", "13", "36", "42"]  # SciFact test query ids


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    """Its own cache: whether a first stage is replayed must not depend on what earlier sessions cached."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(cache))
    return cache


def scifact_questions(data_root, path):
    texts = {}
    for line in open(data_root / "scifact" / "queries.jsonl", encoding="utf-8"):
        row = json.loads(line)
        texts[row["_id"]] = row["text"]
    path.write_text("".join(json.dumps({"id": q, "question": texts[q]}) + "\n" for q in QUESTIONS))
    return path


def scifact_qrels(data_root):
    qrels = {}
    for line in open(data_root / "scifact" / "qrels" / "test.tsv", encoding="utf-8").readlines()[1:]:
        q, d, s = line.split()
        qrels.setdefault(q, {})[d] = int(s)
    return qrels


def trec_top(client, run_id, tmp_path, k):
    ranks = {}
    for line in open(client.download_artifacts(run_id, "run.trec", str(tmp_path / run_id)), encoding="utf-8"):
        q, _, doc, rank, _, _ = line.split()
        if int(rank) <= k:
            ranks[(q, doc)] = int(rank)
    return ranks


def test_pool_judge_and_rescore_from_cached_first_stages(tmp_path, mlflow_uri, data_root, private_cache):
    proc = sweep(["dataset=scifact", "retriever.k1=0.9,1.5", "tracking.experiment=judge-real"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from mlflow.tracking import MlflowClient

    from retrieval_lab.commands.judge import experiment_configurations
    from retrieval_lab.judging.pool import open_pool
    from retrieval_lab.judging.server import JudgingApp
    from retrieval_lab.judging.store import JudgementStore

    client = MlflowClient(mlflow_uri)
    questions = scifact_questions(data_root, tmp_path / "questions.jsonl")
    folder = tmp_path / "judged"
    configurations = experiment_configurations(client, "judge-real")
    assert [c.name for c in configurations] == ["k1=0.9", "k1=1.5"]
    pool, corpus, resumed = open_pool(folder, configurations, questions, 10, "judge-real")
    assert not resumed and pool.questions.ids == QUESTIONS

    # the pool is the evaluated rankings' top 10 for these questions, each pair once, most often retrieved first
    expected: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for c, configuration in enumerate(configurations):
        for (q, doc), rank in trec_top(client, configuration.run_id, tmp_path, 10).items():
            if q in QUESTIONS:
                expected.setdefault((q, doc), []).append((c, rank))
    assert {(i.query_id, i.doc): sorted(i.hits) for i in pool.items} == expected
    counts = [i.count for i in pool.items]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2 and counts[-1] == 1
    assert all(i.start == 0 and i.end == len(corpus.texts[corpus.ids.index(i.doc)]) for i in pool.items)

    # judge every pair as SciFact's qrels say, with the first 60 characters of each relevant one as evidence
    truth = scifact_qrels(data_root)
    app = JudgingApp(folder, pool, JudgementStore(folder), corpus)
    for item in pool.items:
        relevant = item.doc in truth.get(item.query_id, {})
        app.judge({"query_id": item.query_id, "doc": item.doc, "start": item.start, "end": item.end,
                   "grade": 2 if relevant else 0, "evidence": [[item.start, item.start + 60]] if relevant else []})
    assert app.state()["judged"] == len(pool.items)
    again, _, resumed = open_pool(folder, configurations, questions, 10, "judge-real")
    assert resumed and again.to_json() == pool.to_json()

    judged = folder / "judged.jsonl"
    proc = sweep(["dataset=scifact", "retriever.k1=0.9,1.5,0.3", f"dataset.questions={judged}",
                  "tracking.experiment=judge-real-judged"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "judged@10 1.00 (pool depth 10)" in proc.stdout
    assert "judged_at_10" in proc.stdout  # the leaderboard's column
    _, rescored = runs(mlflow_uri, "judge-real-judged", role="config")
    by_name = {r.info.run_name: r for r in rescored}
    assert set(by_name) == {"k1=0.9", "k1=1.5", "k1=0.3"}
    for name in ("k1=0.9", "k1=1.5"):  # pooled: replayed from the cache, every top-10 document judged
        metrics = by_name[name].data.metrics
        assert metrics["bm25_cache_hit"] == 1.0 and metrics["judged_at_10"] == 1.0
        assert metrics["pool_depth"] == 10.0
    outside = by_name["k1=0.3"].data.metrics  # not pooled: searched now, its top 10 partly unjudged
    assert outside["bm25_cache_hit"] == 0.0
    rows = [json.loads(line) for line in judged.read_text().splitlines()]
    evaluated = [r for r in rows if any(g >= 1 for g in r["grades"].values())]  # the averaged questions
    top = trec_top(client, by_name["k1=0.3"].info.run_id, tmp_path, 10)
    shares = [sum(doc in r["grades"] for (q, doc) in top if q == r["id"]) / sum(q == r["id"] for q, _ in top)
              for r in evaluated]
    assert outside["judged_at_10"] == pytest.approx(sum(shares) / len(shares))
    assert outside["judged_at_10"] < 1.0
