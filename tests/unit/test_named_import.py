"""A named import: `data import DIR --name NAME` is `dataset=NAME`, `data list` shows it with its counts, and a changed
folder is imported again by the next run."""
from __future__ import annotations

import json
import time

import pytest

from retrieval_lab.cli import main as cli_main
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from tests.unit.test_folder_import import make_docs

QUESTIONS = [{"question": "what do dogs do with strangers", "evidence": ["Dogs bark at strangers."]},
             {"question": "what is needed to build", "evidence": ["a C compiler"], "doc": "guide/install.md"}]


@pytest.fixture()
def lab(tmp_path, monkeypatch):
    """A data root, a cache (whose conf/ holds registered options) and an empty personal config folder."""
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RETRIEVAL_LAB_CONFIG", str(tmp_path / "personal"))
    (tmp_path / "personal").mkdir()
    docs = make_docs(tmp_path / "docs")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return tmp_path, docs, questions


def test_a_named_import_is_a_dataset_option_with_its_questions(lab, capsys):
    tmp_path, docs, questions = lab
    assert cli_main(["data", "import", str(docs), "--name", "pets", "--questions", str(questions)]) == 0
    out = capsys.readouterr().out
    assert "retrieval-lab run dataset=pets" in out
    cfg = compose_config(["dataset=pets"])  # before: Could not find 'dataset/pets'
    dataset = load_dataset(cfg.dataset)
    assert dataset.name == "pets" and len(dataset.corpus) == 4 and len(dataset.queries) == 2
    assert dataset.path == tmp_path / "data" / "pets"


def test_a_changed_folder_is_imported_again_by_the_next_run(lab, caplog):
    tmp_path, docs, questions = lab
    assert cli_main(["data", "import", str(docs), "--name", "pets", "--questions", str(questions)]) == 0
    cfg = compose_config(["dataset=pets"])
    assert len(load_dataset(cfg.dataset).corpus) == 4
    (docs / "birds.md").write_text("# Birds\n\nParrots repeat what they hear.\n", encoding="utf-8")
    (docs / "readme.txt").unlink()
    time.sleep(0.01)
    (docs / "notes.html").write_text("<h1>Notes</h1><p>Fish swim in schools.</p>", encoding="utf-8")
    dataset = load_dataset(compose_config(["dataset=pets"]).dataset)
    assert sorted(dataset.corpus.ids) == ["birds.md", "guide/install.md", "manual.pdf", "notes.html"]
    assert "Fish swim" in dataset.corpus.texts[dataset.corpus.ids.index("notes.html")]
    assert "imported again" in caplog.text
    caplog.clear()
    load_dataset(compose_config(["dataset=pets"]).dataset)
    assert "imported again" not in caplog.text  # unchanged: read as it is


def test_a_shipped_name_or_a_bad_name_is_refused(lab, capsys):
    tmp_path, docs, _ = lab
    assert cli_main(["data", "import", str(docs), "--name", "scifact"]) == 2
    assert "conf/dataset/scifact.yaml already names a shipped dataset" in capsys.readouterr().err
    assert cli_main(["data", "import", str(docs), "--name", "my docs"]) == 2
    assert not (tmp_path / "data" / "scifact").exists()


def test_an_import_by_a_newer_importer_is_read_again_and_an_old_manifest_is_left_alone(lab, caplog):
    tmp_path, docs, questions = lab
    assert cli_main(["data", "import", str(docs), "--name", "pets", "--questions", str(questions)]) == 0
    manifest_file = tmp_path / "data" / "pets" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "importer": manifest["importer"] - 1}))
    load_dataset(compose_config(["dataset=pets"]).dataset)
    assert "the importer or its parsing libraries changed" in caplog.text
    assert json.loads(manifest_file.read_text())["importer"] == manifest["importer"]
    caplog.clear()
    (docs / "birds.md").write_text("# Birds\n\nParrots repeat what they hear.\n", encoding="utf-8")
    manifest_file.write_text(json.dumps({k: v for k, v in manifest.items() if k != "include"}))
    dataset = load_dataset(compose_config(["dataset=pets"]).dataset)
    assert "birds.md" not in dataset.corpus.ids and "import it again" in caplog.text
