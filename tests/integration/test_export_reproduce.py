"""best -> export -> reload: the frozen config reproduces the logged metrics exactly, searches, evaluates elsewhere."""
from __future__ import annotations

import pytest
import yaml

from tests.integration.sweep_util import cli, runs, sweep


@pytest.fixture(scope="module")
def exported(data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri}
    proc = sweep(["retriever.k1=0.9,1.2", "retriever.b=0.4", f"dataset.root={data_root}", "dataset=scifact",
                  "tracking.experiment=exporttest"], tmp, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(["best", "--experiment", "exporttest", "--metric", "ndcg_at_10", "--export", "best.yaml"], tmp,
               env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, uri, proc.stdout


def test_best_names_top_and_the_recommendation_with_intervals_and_power(exported):
    _, _, out = exported
    assert "scifact@" in out and "2 configurations, 300 paired queries" in out and "Holm" in out
    assert "95% interval" in out and "top:" in out and "recommended:" in out
    assert "power: with these 300 questions" in out and "probability of being best:" in out
    assert "exported top configuration" in out


def test_export_holds_identity_and_reproduces_every_logged_metric_exactly(exported, monkeypatch):
    tmp, uri, _ = exported
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    data = yaml.safe_load((tmp / "best.yaml").read_text())
    client, children = runs(uri, "exporttest", "config")
    logged = {c.info.run_id: c for c in children}[data["run_id"]]
    assert data["format"] == "retrieval-lab/export-v1"
    assert data["dataset"]["name"] == "scifact" and len(data["dataset"]["hash"]) == 64
    assert data["dataset"]["hash"].startswith(logged.data.tags["dataset_hash"])
    assert data["models"][0]["name"] == "bm25" and data["models"][0]["k1"] in (0.9, 1.2)
    assert data["metrics"]["ndcg_at_10"] == logged.data.metrics["ndcg_at_10"]
    assert data["code_version"] == "test-code-v1" and data["config_hash"] == logged.data.tags["config_hash"]
    selection = data["selection"]  # the choice with its interval and the power of the questions behind it
    low, high = selection["mean_95"]
    assert selection["queries"] == 300 and low < data["metrics"]["ndcg_at_10"] < high
    assert selection["power"]["detectable_difference"] > 0 and selection["margin"] == "0.01 absolute"

    from retrieval_lab.pipeline import run_experiment
    from retrieval_lab.pipeline.export import config_from_export, read_export

    outcome = run_experiment(config_from_export(read_export(tmp / "best.yaml")))
    for name, value in outcome.evaluation.means.items():
        assert value == logged.data.metrics[name], name  # exact, not approximately


def test_load_retriever_and_search_cli(exported):
    tmp, uri, _ = exported
    import retrieval_lab

    retriever = retrieval_lab.load_retriever(tmp / "best.yaml")
    hits = retriever.search("vitamin D deficiency and bone density", k=5)
    assert len(hits) == 5 and hits[0]["score"] >= hits[-1]["score"]
    assert "vitamin" in hits[0]["passage"].lower() and hits[0]["doc_id"]
    proc = cli(["search", "--config", "best.yaml", "-k", "3", "vitamin D deficiency and bone density"], tmp,
               env_extra={"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("  1. ") and "score" in lines[0] and len(lines) == 6


def test_evaluate_the_export_on_another_dataset(exported):
    tmp, uri, _ = exported
    proc = cli(["evaluate", "--config", "best.yaml", "dataset=nfcorpus"], tmp, env_extra={"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nfcorpus (test, 323 queries, 3633 docs)" in proc.stdout
    proc = cli(["evaluate", "--config", "best.yaml"], tmp, env_extra={"MLFLOW_TRACKING_URI": uri})
    assert "reproduced: identical" in proc.stdout


def test_a_foreign_target_in_an_export_is_refused(exported):
    tmp, uri, _ = exported
    data = yaml.safe_load((tmp / "best.yaml").read_text())
    data["config"]["retriever"]["_target_"] = "os.system"
    (tmp / "evil.yaml").write_text(yaml.safe_dump(data))
    proc = cli(["search", "--config", "evil.yaml", "anything"], tmp, env_extra={"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 2
    assert "refusing to instantiate 'os.system'" in proc.stderr and "config key 'config.retriever._target_'" in proc.stderr


@pytest.fixture(scope="module")
def bm25_export(data_root, tmp_path_factory):
    """best.yaml of one BM25 run on SciFact with the default settings."""
    tmp = tmp_path_factory.mktemp("bm25export")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
    proc = cli(["run", f"dataset.root={data_root}", "dataset=scifact", "tracking.experiment=bm25export"], tmp,
               env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(["best", "--experiment", "bm25export", "--export", "best.yaml"], tmp, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, env


@pytest.mark.parametrize("overrides, changed", [
    (["retriever=bm25"], []),  # the option the export was run with: nothing changes
    (["retriever=hybrid", "embedder=wordllama"], ["retriever.name: bm25 -> hybrid",
                                                   "embedder.name: minilm_l6 -> wordllama",
                                                   "retriever.inputs.bm25.name: (absent) -> bm25"]),
    (["chunker=fixed_tokens"], ["3 keys changed", "chunker.name: none -> fixed_tokens",
                                "chunker.size: (absent) -> 128"]),
], ids=["unchanged", "hybrid-wordllama", "fixed-tokens"])
def test_evaluate_an_export_with_group_overrides_says_what_changed(bm25_export, overrides, changed):
    tmp, env = bm25_export
    proc = cli(["evaluate", "--config", "best.yaml", *overrides], tmp, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    if not changed:
        assert "no key changed; 30 metrics of run" in out and "reproduced: identical" in out
        return
    for text in changed:
        assert text in out, out[-2000:]
    assert "reproduced" not in out and "changed pipeline" in out and "ndcg_at_10 0.6762 -> " in out


def test_search_an_export_with_overrides_composes_the_same_way(bm25_export):
    tmp, _ = bm25_export
    import retrieval_lab

    retriever = retrieval_lab.load_retriever(tmp / "best.yaml", ["retriever=hybrid", "embedder=wordllama"])
    cfg = retriever.cfg
    assert cfg.retriever.name == "hybrid" and set(cfg.retriever.inputs) == {"bm25", "dense"}
    assert cfg.embedder.name == "wordllama"
    hits = retriever.search("vitamin D deficiency and bone density", k=3)
    assert len(hits) == 3 and hits[0]["score"] >= hits[-1]["score"]
