"""`retrieval-lab init DIR`: the folder is checked and imported, a study sized for it is written into the personal
config folder, and the two commands it prints work when followed, with questions and without."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.integration.sweep_util import cli
from tests.unit.test_folder_import import write_pdf

TOPICS = {
    "volcanoes": ["Magma rises through cracks in the crust of the planet.", "Ash clouds can ground aircraft for "
                  "many days across a whole continent.", "Lava flows cool into black basalt rock near the coast."],
    "glaciers": ["Glaciers carve deep valleys shaped like the letter U.", "Meltwater feeds rivers through the dry "
                 "summer months in mountain regions.", "Moraines mark the farthest point a glacier reached."],
    "reefs": ["Coral polyps build reefs from calcium carbonate skeletons.", "Warm water bleaches corals when algae "
              "leave their tissue under heat stress.", "Parrotfish grind dead coral into fine white sand."],
    "deserts": ["Sand dunes migrate with the prevailing wind each year.", "Cacti store water in thick stems and "
                "close their pores during the hot day.", "Flash floods fill dry riverbeds within minutes."],
    "forests": ["Fungi connect tree roots into a shared underground network.", "Fallen leaves decay into rich "
                "humus that feeds the saplings below.", "Woodpeckers drill holes that owls later use as nests."],
    "tides": ["The moon pulls the oceans into two bulges of water.", "Spring tides happen when the sun and moon "
              "align at new and full moon.", "Tide pools hold starfish and anemones at low water."],
}
QUESTIONS = [{"question": "what do parrotfish do to coral", "evidence": ["Parrotfish grind dead coral into fine "
                                                                         "white sand."]},
             {"question": "how do glaciers shape valleys", "evidence": ["Glaciers carve deep valleys shaped like "
                                                                        "the letter U."]},
             {"question": "why do corals bleach", "evidence": ["Warm water bleaches corals"]},
             {"question": "what causes spring tides", "evidence": ["when the sun and moon align"]}]


def write_folder(folder: Path) -> Path:
    for topic, sentences in TOPICS.items():
        (folder / "notes").mkdir(parents=True, exist_ok=True)
        (folder / "notes" / f"{topic}.md").write_text(f"# {topic.title()}\n\n" + " ".join(sentences) + "\n")
    # one page in two formats: the PDF twin must be left out, not indexed as a second document
    currents = ["Ocean currents carry warm water from the tropics toward the poles.", "The Gulf Stream keeps "
                "winters mild along the western coasts of Europe."]
    (folder / "notes" / "currents.html").write_text("<h1>Currents</h1><p>" + " ".join(currents) + "</p>")
    write_pdf(folder / "notes" / "currents.pdf", [currents], title="Currents")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def next_commands(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = lines.index("next:")
    return [shlex.split(line.strip())[1:] for line in lines[start + 1:] if line.startswith("  retrieval-lab ")]


def follow(command: list[str], cwd: Path, env: dict):
    proc = cli(command, cwd, env_extra=env, timeout=600)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture()
def lab(tmp_path, mlflow_uri):
    env = {"RETRIEVAL_LAB_DATA": str(tmp_path / "data"), "RETRIEVAL_LAB_CONFIG": str(tmp_path / "personal")}
    (tmp_path / "personal").mkdir()
    return tmp_path, write_folder(tmp_path / "field_notes"), env


@pytest.mark.slow
def test_init_with_questions_writes_a_study_whose_two_commands_work(lab):
    tmp_path, folder, env = lab
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    proc = follow(["init", str(folder), "--questions", str(questions)], tmp_path, env)
    out = proc.stdout
    assert "7 markdown" not in out and "6 markdown" in out and "1 html" in out and "1 pdf" in out
    assert "left out the 1 pdf files: 1 of them are the same documents" in out
    assert "1 of other formats skipped (.png 1)" in out
    assert "imported 7 documents" in out and "documents are short" in out
    study = tmp_path / "personal" / "experiments" / "field_notes.yaml"
    assert yaml.safe_load(study.read_text())["sweep"]["metric"] == "evidence_coverage_budget_512"
    assert (tmp_path / "personal" / "dataset" / "field_notes.yaml").exists()
    commands = next_commands(out)
    assert [c[0] for c in commands] == ["sweep", "best"]
    swept = follow(commands[0], tmp_path, env)
    assert "experiment 'field_notes-sweep'" in swept.stdout
    follow(commands[1], tmp_path, env)
    export = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert export["dataset"]["name"] == "field_notes" and export["dataset"]["documents"] == 7
    assert export["dataset"]["queries"] == 4


@pytest.mark.slow
def test_init_without_questions_points_to_synth_and_judge_and_the_commands_work(lab):
    tmp_path, folder, env = lab
    env = {**env, "RETRIEVAL_LAB_CACHE": str(tmp_path / "cache")}  # data synth registers its option in the cache
    proc = follow(["init", str(folder), "--name", "field"], tmp_path, env)
    assert "judge --experiment field-synth-sweep --questions" in proc.stdout
    synth, sweep, judge = next_commands(proc.stdout)
    assert synth[:2] == ["data", "synth"] and sweep[:2] == ["sweep", "field"] and judge[0] == "judge"
    follow(synth, tmp_path, env)
    swept = follow(sweep, tmp_path, env)
    assert "experiment 'field-synth-sweep'" in swept.stdout and "FAILED" not in swept.stdout
