"""`retrieval-lab best` on a real (SQLite) MLflow store: runs of several datasets are never left out silently,
`--dataset` chooses, run names print in full, a run missing questions is an error naming it, the export records the
intervals, and `--cross-validate` gives the held-out estimate."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from retrieval_lab import tracking
from retrieval_lab.cli import main
from retrieval_lab.commands.best import Candidate, format_ranking, rank, ranking_from
from retrieval_lab.errors import LabError

QUESTIONS = [f"q{i}" for i in range(30)]
LONG = "chunker=sentences unit=chunk pipeline=hybrid_minilm_l3"  # two names alike in their first 34 characters


def log_run(client, experiment_id, name, values, dataset="scifact", digest="aaaa1111", split="test", p50=1.0,
            tmp_path=None, metric="ndcg_at_10"):
    run = client.create_run(experiment_id, run_name=name,
                            tags={"role": "config", "dataset": dataset, "dataset_hash": digest, "split": split,
                                  "params_hash": name + dataset + digest})
    run_id = run.info.run_id
    client.log_metric(run_id, metric, float(np.mean(list(values.values()))))
    client.log_metric(run_id, "query_p50_ms", p50)
    folder = tmp_path / run_id
    folder.mkdir()
    with open(folder / "per_query.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query_id", metric])
        writer.writerows([q, f"{v:.6f}"] for q, v in values.items())
    client.log_artifact(run_id, str(folder / "per_query.csv"))
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture()
def store(mlflow_uri, tmp_path):
    client = tracking.client({"uri": mlflow_uri})
    experiment_id = client.create_experiment("mixed")
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.9, len(QUESTIONS))

    def values(shift, noise=0.05):
        return dict(zip(QUESTIONS, np.clip(base + shift + rng.normal(0, noise, len(base)), 0, 1).tolist()))

    ids = {
        "top": log_run(client, experiment_id, f"{LONG} alpha=0.3", values(0.05), p50=9.0, tmp_path=tmp_path),
        "second": log_run(client, experiment_id, f"{LONG} alpha=0.7", values(0.0), p50=8.0, tmp_path=tmp_path),
        "bm25": log_run(client, experiment_id, "pipeline=bm25", values(-0.1), p50=0.1, tmp_path=tmp_path),
        # one run of the same dataset name with other content (the user's own documents under a shipped name)
        "other": log_run(client, experiment_id, "pipeline=bm25 own", values(0.3), digest="bbbb2222", p50=0.1,
                         tmp_path=tmp_path),
        "nfcorpus": log_run(client, experiment_id, "pipeline=bm25 nf", dict(zip(QUESTIONS[:5], [0.3] * 5)),
                            dataset="nfcorpus", digest="cccc3333", tmp_path=tmp_path),
    }
    return client, ids


def test_runs_of_other_datasets_are_counted_and_dataset_chooses_them(store):
    client, ids = store
    ranking = rank(client, "mixed", trials=200)
    assert {c.run_id for c in ranking.candidates} == {ids["top"], ids["second"], ids["bm25"]}
    out = format_ranking(ranking)
    assert "scifact@aaaa1111 (test split): 3 configurations, 30 paired queries" in out
    assert ("left out 1 run on scifact@bbbb2222 (test split): the same name with other content (documents, questions "
            "or judgements changed); choose it with --dataset scifact@bbbb2222") in out
    assert "left out 1 run on nfcorpus@cccc3333 (test split): another dataset; choose it with --dataset nfcorpus" in out
    # following the fixes works
    assert [c.run_id for c in rank(client, "mixed", trials=200, dataset="scifact@bbbb2222").candidates] == [
        ids["other"]]
    assert [c.run_id for c in rank(client, "mixed", trials=200, dataset="nfcorpus").candidates] == [ids["nfcorpus"]]
    with pytest.raises(LabError, match=r"(?s)--dataset scifact matches 2 datasets .*fix: --dataset scifact@"):
        rank(client, "mixed", trials=200, dataset="scifact")
    with pytest.raises(LabError, match="no run of this experiment is on that dataset"):
        rank(client, "mixed", trials=200, dataset="arguana")


def test_run_names_print_in_full(store):
    client, _ = store
    out = format_ranking(rank(client, "mixed", trials=200))
    assert f"{LONG} alpha=0.3" in out and f"{LONG} alpha=0.7" in out


def test_a_run_missing_questions_is_an_error_naming_it():
    full = dict(zip(QUESTIONS, np.linspace(0, 1, 30).tolist()))
    partial = {q: v for q, v in full.items() if q not in ("q3", "q7")}
    candidates = [Candidate("id-a", "a", 0.5, 1.0, full), Candidate("id-b", "short one", 0.5, 1.0, partial)]
    with pytest.raises(LabError, match=r"(?s)run 'short one' \(id-b\) has no 'ndcg_at_10' for 2 of the 30 questions .*"
                                       r"e\.g\. q3, q7.*mlflow runs delete --run-id id-b"):
        ranking_from(candidates, "ndcg_at_10", trials=100)
    assert ranking_from(candidates[:1], "ndcg_at_10").pick.run_id == "id-a"  # without it (the fix): ranked


def test_following_the_missing_questions_fix_works(store, tmp_path):
    client, ids = store
    experiment_id = client.get_experiment_by_name("mixed").experiment_id
    short = log_run(client, experiment_id, "subset", dict(zip(QUESTIONS[:20], [0.5] * 20)), tmp_path=tmp_path)
    with pytest.raises(LabError, match=f"run 'subset' \\({short}\\) has no 'ndcg_at_10' for 10 of the 30"):
        rank(client, "mixed", trials=200)
    client.delete_run(short)  # what `mlflow runs delete --run-id` does
    assert len(rank(client, "mixed", trials=200).candidates) == 3


def test_the_cli_prints_intervals_and_the_cross_validated_estimate_and_exports_them(store, tmp_path, monkeypatch,
                                                                                    capsys):
    client, ids = store
    import retrieval_lab.commands.best as best

    exported = {}
    monkeypatch.setattr(best, "export_run", lambda c, run_id, path, selection: exported.update(
        run_id=run_id, selection=selection) or path)
    monkeypatch.setattr(best, "read_export", lambda path: {"config": {}})  # the runs here log no config to export
    monkeypatch.setattr(best, "evaluate_hints", lambda path, config: [])
    assert main(["best", "--experiment", "mixed", "--trials", "200", "--cross-validate", "5", "--margin", "2%",
                 "--pick", "cheapest", "--export", str(tmp_path / "best.yaml")]) == 0
    out = capsys.readouterr().out
    assert "95% interval" in out and "P(best)" in out and "power: with these 30 questions" in out
    assert "cross-validated (5 folds of questions, seed 0), rule 'highest mean': held-out ndcg_at_10" in out
    assert "rule 'cheapest non-inferior (margin 2% of the top's score)'" in out and "optimism" in out
    selection = exported["selection"]
    assert selection["rule"] == "cheapest" and selection["margin"] == "2% of the top's score"
    assert len(selection["mean_95"]) == 2 and selection["power"]["detectable_difference"] > 0
    assert [cv["folds"] for cv in selection["cross_validation"]] == [5, 5]
    yaml.safe_dump(selection)  # plain data: the export writes it as YAML


def test_cross_validate_needs_enough_questions(store, capsys):
    assert main(["best", "--experiment", "mixed", "--dataset", "nfcorpus", "--cross-validate", "6"]) != 0
    err = capsys.readouterr().err
    assert "got 6 folds for 5 queries" in err and "fix: --cross-validate 5" in err
    assert main(["best", "--experiment", "mixed", "--dataset", "nfcorpus", "--cross-validate", "5"]) == 0  # the fix


def test_a_configuration_significantly_worse_yet_within_the_margin_is_recommended_and_marked_both():
    rng = np.random.default_rng(7)
    top = rng.uniform(0.2, 0.9, 400)
    close = top - 0.003 + rng.normal(0, 0.005, 400)  # worse for sure, by far less than 0.01
    questions = [f"q{i}" for i in range(400)]
    candidates = [Candidate("id-top", "top", float(top.mean()), 10.0, dict(zip(questions, top.tolist()))),
                  Candidate("id-close", "close", float(close.mean()), 1.0, dict(zip(questions, close.tolist())))]
    out = format_ranking(ranking_from(candidates, "ndcg_at_10", trials=500))
    row = next(line for line in out.splitlines() if line.startswith("  2  close"))
    assert " *= " in row
    assert "recommended: close" in out and "the cheapest configuration shown non-inferior" in out
    assert out.startswith("2 configurations, 400 paired queries")


def test_the_sweep_leaderboard_carries_the_intervals_and_the_power_line():
    from retrieval_lab.sweep.report import (Row, console_leaderboard, leaderboard, markdown, recommendation_of,
                                            summary_lines)

    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.9, 40)
    rows = [Row(f"id{i}", f"k1={k1}", "new", {"ndcg_at_10": float((base - shift).mean()), "query_p50_ms": 1.0}, {},
                dict(zip(QUESTIONS + [f"x{j}" for j in range(10)], (base - shift + rng.normal(0, 0.05, 40)).tolist())))
            for i, (k1, shift) in enumerate([(0.9, 0.0), (1.2, 0.01), (1.5, 0.2)])]
    rows.append(Row("", "k1=-1", "failed", {}, {}))
    rec, why = recommendation_of(rows, "ndcg_at_10")
    assert why == "" and rec.queries == 40
    header, table = leaderboard(rows, "ndcg_at_10", rec)
    assert header[:7] == ["rank", "run", "ndcg_at_10", "delta", "delta_95_low", "delta_95_high", "p_best"]
    third = dict(zip(header, table[2]))
    assert float(third["delta_95_low"]) < float(third["delta"]) < float(third["delta_95_high"]) < 0
    assert table[-1][header.index("status")] == "failed"
    md = markdown(header, table, summary_lines(rec))
    assert "power: with these 40 questions" in md and "p_best: the share of 2,000 bootstrap resamples" in md
    board = console_leaderboard(rows, "ndcg_at_10", rec=rec)
    assert "delta [95% interval]" in board and "power: with these 40 questions" in board
    rows[1].per_query.pop("q0")  # a configuration evaluated on other questions: no intervals, and it says why
    rec, why = recommendation_of(rows, "ndcg_at_10")
    assert rec is None and "different questions" in console_leaderboard(rows, "ndcg_at_10", rec=rec, why=why)
