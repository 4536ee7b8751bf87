"""An export written before the stage keys became `name` (fusion `method`, reranker `type`) loads, reproduces every
metric it recorded, and searches; a command line with an old key is refused, naming the new key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.sweep_util import tiny_beir

OLD_EXPORT = Path(__file__).parent / "data" / "export_before_name_keys.yaml"


@pytest.fixture()
def old_export(tmp_path, monkeypatch):
    folder = tiny_beir(tmp_path / "tiny")
    path = tmp_path / "old-best.yaml"
    path.write_text(OLD_EXPORT.read_text().replace("TINY_BEIR_FOLDER", str(folder)))
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return path


def test_an_export_with_the_old_keys_reproduces_its_scores(old_export, capsys):
    from retrieval_lab.cli import main

    raw = yaml.safe_load(old_export.read_text())
    assert raw["config"]["retriever"]["fusion"]["method"] == "rrf" and raw["config"]["reranker"]["type"] == "none"
    assert main(["evaluate", "--config", str(old_export), "tracking.enabled=false"]) == 0
    out = capsys.readouterr().out
    assert f"no key changed; 30 metrics of run {raw['run_id']} reproduced: identical" in out, out
    assert main(["search", "--config", str(old_export), "purr"]) == 0


def test_the_old_key_on_the_command_line_names_the_new_one_and_the_fix_runs(old_export, capsys):
    from retrieval_lab.cli import main

    assert main(["evaluate", "--config", str(old_export), "tracking.enabled=false",
                 "retriever.fusion.method=convex"]) == 2
    err = capsys.readouterr().err
    assert "config key 'retriever.fusion.method': renamed to retriever.fusion.name" in err
    fix = err.split("fix:", 1)[1].strip()
    assert fix == "use retriever.fusion.name=convex"
    assert main(["evaluate", "--config", str(old_export), "tracking.enabled=false", fix.removeprefix("use ")]) == 0
    out = capsys.readouterr().out
    assert "1 key changed against run" in out and "retriever.fusion.name: rrf -> convex" in out
    assert "ndcg_at_10 0.1794 -> 0.1481" in out  # the old sweep's convex configuration scored 0.1481
