"""Every printed fix works: each case makes a mistake a new user makes, reads the `fix:` the error prints, does
exactly what it says, and checks that the command then succeeds. Commands run in-process where they can (`main`),
so the module costs seconds; `sweep` and `judge` run as the user runs them, in a process of their own.

The tracking server's fix (a stale state after a reboot) is followed in tests/integration/test_server.py, the Ray
launcher's (an unreachable cluster) in tests/integration/test_launchers.py.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from retrieval_lab.cli import main
from retrieval_lab.config import compose_config, to_container
from tests.integration.sweep_util import CLI, tiny_beir

DOCS = {
    "cats.md": "# Cats\n\nCats purr when they are content and sleep most of the day.\n",
    "dogs.md": "# Dogs\n\nDogs bark at strangers and guard the house at night.\n",
    "birds.md": "# Birds\n\nBirds sing at dawn to mark their territory in spring.\n",
}
QUESTIONS = [
    {"id": "q1", "question": "why do cats purr", "evidence": ["Cats purr when they are content"], "doc": "cats.md"},
    {"id": "q2", "question": "when do dogs bark", "evidence": ["Dogs bark at strangers"], "doc": "dogs.md"},
    {"id": "q3", "question": "why do birds sing", "evidence": ["Birds sing at dawn"], "doc": "birds.md"},
]


def docs_folder(folder: Path, skip: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text("" if name == skip else text, encoding="utf-8")  # an empty file is unreadable
    return folder


def questions_file(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def fix_line(err: str) -> str:
    """The text after the last `fix:` of an error, as printed."""
    assert "Traceback" not in err, err
    fixes = [line.split("fix:", 1)[1].strip() for line in err.splitlines() if line.strip().startswith("fix:")]
    assert fixes, f"no fix printed:\n{err}"
    return fixes[-1]


def quoted_command(fix: str) -> list[str]:
    """The first command the fix quotes in backquotes, without the leading `retrieval-lab`."""
    command = shlex.split(re.search(r"`retrieval-lab ([^`]+)`", fix).group(1))
    return command


def fails(args: list[str], capsys) -> str:
    code = main(args)
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    return out.err


def succeeds(args: list[str], capsys) -> str:
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


@pytest.fixture()
def place(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def evaluate(*overrides: str) -> list[str]:
    return ["evaluate", "tracking.enabled=false", *overrides]


def test_data_import_on_error_fail(place, capsys):
    docs = docs_folder(place / "docs", skip="birds.md")
    err = fails(["data", "import", str(docs), "--name", "pets", "--on-error", "fail"], capsys)
    assert "birds.md: cannot import: empty file" in err
    fix = fix_line(err)
    assert "import with --on-error skip" in fix
    out = succeeds(["data", "import", str(docs), "--name", "pets", "--on-error", "skip"], capsys)
    assert "imported 2 documents" in out and "skipped birds.md: empty file" in out


def test_dataset_on_error_value_then_the_unreadable_file(place, capsys):
    """A wrong value (`Fail`) names the allowed ones, even when the folder's import is cached already; the fix
    leads to the unreadable file's own error, whose fix (skip it) runs."""
    docs = docs_folder(place / "docs", skip="birds.md")
    questions = place / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS if q["doc"] != "birds.md"), encoding="utf-8")
    base = [f"dataset.path={docs}", f"dataset.questions={questions}"]
    succeeds(evaluate(*base), capsys)  # the import is cached now
    err = fails(evaluate(*base, "dataset.on_error=Fail"), capsys)
    assert "config key 'dataset.on_error': 'Fail' is not one of the allowed values: skip, fail" in err
    fix = fix_line(err)
    assert fix == "set dataset.on_error=fail"
    err = fails(evaluate(*base, "dataset.on_error=fail"), capsys)
    assert "birds.md: cannot import: empty file" in err
    assert "dataset.on_error=skip" in fix_line(err)
    assert "2 queries" in succeeds(evaluate(*base, "dataset.on_error=skip"), capsys)


def test_cached_import_reports_its_skipped_files_on_every_run(place, capsys, caplog, monkeypatch):
    """The second run over a folder reuses its import: it still names the file left out, and counts it in MLflow."""
    from mlflow.tracking import MlflowClient

    docs = docs_folder(place / "docs", skip="birds.md")
    questions = place / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS if q["doc"] != "birds.md"), encoding="utf-8")
    uri = f"sqlite:///{place / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    args = ["evaluate", f"dataset.path={docs}", f"dataset.questions={questions}"]
    for attempt in range(2):
        caplog.clear()
        with caplog.at_level("WARNING", logger="retrieval_lab.data.folder"):
            out = succeeds([*args, *(["--experiment", "pets"] if attempt else [])], capsys)
        said = "\n".join(r.getMessage() for r in caplog.records)
        assert "skipped birds.md: empty file" in said, (attempt, said)
        assert re.search(r"import_skipped_files\s+1\b", out), out
    assert "as imported before" in said  # the second time, from the import's manifest
    client = MlflowClient(uri)
    logged = client.search_runs([client.get_experiment_by_name("pets").experiment_id])
    assert [r.data.metrics["import_skipped_files"] for r in logged] == [1.0]  # the run that reused the import


def test_folder_without_questions_names_the_folder_and_dataset_questions_fixes_it(place, capsys):
    docs = docs_folder(place / "docs")
    err = fails(evaluate(f"dataset.path={docs}"), capsys)
    assert err.startswith(f"error: {docs}: a folder of documents has no questions"), err
    assert "cache" not in err.split("fix:")[0]  # the user's folder, not the import inside the cache
    fix = fix_line(err)
    assert "set dataset.questions=FILE" in fix
    questions = questions_file(place / "questions.jsonl")
    assert "3 queries" in succeeds(evaluate(f"dataset.path={docs}", f"dataset.questions={questions}"), capsys)


def test_questions_citing_a_skipped_file_say_it_was_skipped_and_repairing_it_works(place, capsys):
    docs = docs_folder(place / "docs", skip="birds.md")
    questions = questions_file(place / "questions.jsonl")
    args = evaluate(f"dataset.path={docs}", f"dataset.questions={questions}")
    err = fails(args, capsys)
    assert "doc 'birds.md' is not in the corpus: the import skipped that file as unreadable (empty file)" in err
    fix = fix_line(err)
    assert fix.startswith("repair or replace birds.md in the documents folder") and "copy each quote" not in fix
    (docs / "birds.md").write_text(DOCS["birds.md"], encoding="utf-8")  # repaired
    assert "3 queries" in succeeds(args, capsys)


def test_missing_questions_file(place, capsys):
    docs = docs_folder(place / "docs")
    err = fails(evaluate(f"dataset.path={docs}", "dataset.questions=questoins.jsonl"), capsys)
    assert "questoins.jsonl is not a file" in err
    assert "give the path of a .jsonl or .csv questions file" in fix_line(err)
    questions = questions_file(place / "questions.jsonl")
    assert "3 queries" in succeeds(evaluate(f"dataset.path={docs}", f"dataset.questions={questions.name}"), capsys)


def test_a_renamed_stage_key_on_the_command_line(place, capsys):
    """`reranker.type` became `reranker.name` (every stage is chosen by its name): the old key is refused with the
    new one, for `evaluate` (composed here) and `run` (composed by Hydra's app), and the fix runs."""
    folder = tiny_beir(place / "tiny")
    base = [f"dataset.path={folder}"]
    for command in (evaluate(*base), ["run", "tracking.enabled=false", *base]):
        err = fails([*command, "reranker.type=none"], capsys)
        assert "config key 'reranker.type': renamed to reranker.name" in err
        fix = fix_line(err)
        assert fix == "use reranker.name=none"
        succeeds([*command, fix.removeprefix("use ")], capsys)


def test_data_synth_on_documents_not_imported_yet(place, capsys):
    docs = docs_folder(place / "docs")
    synth = ["data", "synth", "--dataset", "pets", "--generator", "extract", "--queries", "3", "--out", "pets-q"]
    err = fails(synth, capsys)
    fix = fix_line(err)
    command = quoted_command(fix[fix.index("import documents first"):])
    assert command == ["data", "import", "FOLDER", "--name", "NAME"], fix
    succeeds(["data", "import", str(docs), "--name", "pets"], capsys)  # FOLDER and NAME filled in
    err = fails(synth, capsys)  # three one-sentence documents share no key term: extract makes none
    fix = fix_line(err)
    assert "--queries 0" not in fix, "a fix must not ask for what is refused"
    other = re.search(r"(--generator \w+)", fix).group(1).split()
    assert "wrote 3 questions" in succeeds([*synth[:4], *other, *synth[6:]], capsys)


def test_evaluate_config_of_a_moved_dataset_folder(place, capsys):
    """An export whose dataset.path folder moved: the printed fix (dataset.path=NEW) evaluates it again; the
    dataset.root the old message suggested could not, as dataset.path wins over it."""
    old = tiny_beir(place / "old" / "tiny")
    cfg = compose_config([f"dataset.path={old}", "tracking.enabled=false", f"cache.dir={place / 'cache'}"])
    export = place / "best.yaml"
    export.write_text(yaml.safe_dump(to_container(cfg), sort_keys=False))
    new = place / "moved" / "tiny"
    new.parent.mkdir()
    shutil.move(str(old), str(new))
    err = fails(["evaluate", "--config", str(export)], capsys)
    assert f"{old}: dataset.path: not found" in err
    fix = fix_line(err)
    command = quoted_command(fix[fix.index("`retrieval-lab evaluate"):])
    assert command == ["evaluate", "--config", "FILE", "dataset.path=NEW_PLACE"], fix
    out = succeeds(["evaluate", "--config", str(export), f"dataset.path={new}"], capsys)
    assert "12 queries" in out


def test_judge_without_runs_then_too_deep(place, capsys, monkeypatch):
    """`judge` on an experiment with no configuration: its fix (sweep into it) and then a --depth deeper than the
    runs retrieved (its fix: the depth it names) lead to the judging page."""
    docs = docs_folder(place / "docs")
    questions = questions_file(place / "questions.jsonl")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{place / 'mlruns' / 'mlflow.db'}")
    judge = ["judge", "--experiment", "pets", "--questions", str(questions), "--port", "0"]

    err = fails([*judge, "--depth", "20"], capsys)
    assert "no MLflow experiment 'pets'" in err
    command = quoted_command(fix_line(err))
    assert command[0] == "sweep" and command[-1] == "tracking.experiment=pets", err
    overrides = [f"dataset.path={docs}", f"dataset.questions={questions}", "eval.depth=10", "eval.k=[1,10]"]
    swept = subprocess.run([*CLI, "sweep", *overrides, *command[2:], f"hydra.sweep.dir={place / 'multirun'}"],
                           capture_output=True, text=True, cwd=place, timeout=300,
                           env={**os.environ, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1"})
    assert swept.returncode == 0, swept.stderr[-3000:]
    err = fails([*judge, "--depth", "20"], capsys)
    said = re.search(r"use --depth (\d+) or less", err)
    assert said, err
    page = subprocess.Popen([*CLI, *judge, "--depth", said.group(1)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=place)
    try:
        lines = []
        for line in page.stdout:
            lines.append(line)
            if line.startswith("http://127.0.0.1:"):
                break
        assert lines and lines[-1].startswith("http://127.0.0.1:"), "".join(lines) + page.stderr.read()
    finally:
        page.send_signal(signal.SIGTERM)
        page.wait(timeout=60)
