"""What `retrieval-lab sweep` and `run` print: one line per configuration and a leaderboard; every metric with -v.

On the tiny hand-made BEIR set of the sweep tests, through the CLI in a subprocess whose output is a pipe (not a
terminal), as in CI or `make demo | tee`.
"""
from __future__ import annotations

import re

import pytest

from tests.integration.sweep_util import cli, sweep, tiny_beir

GRID = ["retriever.k1=0.5,1.5", "retriever.b=0.2,0.9"]  # 4 configurations
NAMES = {"k1=0.5 b=0.2", "k1=0.5 b=0.9", "k1=1.5 b=0.2", "k1=1.5 b=0.9"}
CONFIG_LINE = re.compile(r"^\[(\d+)/4, \d+:\d\d elapsed, ETA (\d+:\d\d|\?)\] (?P<name>k1=\S+ b=\S+) +"
                         r"ndcg_at_10 (?P<metric>\d\.\d{4})  p50 \d+\.\d ms  (?P<state>done|resumed)$")
NOISE = ("[HYDRA]", "Launching", "#0 :", "DEBUG", "Building index", "INFO", "Creating initial MLflow database",
         "alembic", "Context impl", "encode ", "\r")


@pytest.fixture()
def tiny(tmp_path):
    return tiny_beir(tmp_path / "tiny")


def config_lines(stdout: str) -> list[re.Match]:
    return [m for line in stdout.splitlines() if (m := CONFIG_LINE.match(line))]


def leaderboard(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["rank", "run", "ndcg_at_10"])
    rows = []
    for line in lines[start + 1:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        rows.append(cells)
    return rows


def test_a_sweep_prints_one_line_per_configuration_then_the_leaderboard(tiny, tmp_path, mlflow_uri):
    args = [*GRID, f"dataset.path={tiny}", "tracking.experiment=console"]
    proc = sweep(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = config_lines(proc.stdout)
    assert {m["name"] for m in lines} == NAMES and {m["state"] for m in lines} == {"done"}
    assert sorted(int(m.group(1)) for m in lines) == [1, 2, 3, 4]  # the progress counts every configuration
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
    assert "hit_rate" not in proc.stdout and "chunk_tokens_mean" not in proc.stdout  # full tables only with -v
    board = leaderboard(proc.stdout)
    assert [row[0] for row in board] == ["1", "2", "3", "4"]
    scores = [float(row[3]) for row in board]  # rank, k1=.., b=.., metric
    assert scores == sorted(scores, reverse=True)
    assert {f"{row[1]} {row[2]}" for row in board} == NAMES
    best = max(lines, key=lambda m: float(m["metric"]))
    assert f"{board[0][1]} {board[0][2]}" == best["name"] and board[0][3] == best["metric"]
    # the leaderboard says what the questions can decide: delta intervals, the power line (and its warning)
    assert "delta [95% interval]" in proc.stdout and re.search(r"^  power: with these \d+ questions", proc.stdout, re.M)
    notes = [line for line in proc.stdout.splitlines() if re.match(r"  (power:|warning:|delta: the difference)", line)]
    # header, 4 configuration lines, summary, leaderboard header + 4 rows, its notes, next steps: nothing else
    assert len(proc.stdout.splitlines()) == 12 + len(notes), proc.stdout

    again = sweep(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = config_lines(again.stdout)
    assert {m["name"] for m in resumed} == NAMES and {m["state"] for m in resumed} == {"resumed"}
    assert {(m["name"], m["metric"]) for m in resumed} == {(m["name"], m["metric"]) for m in lines}
    assert "4 resumed" in again.stdout


def test_a_failed_configuration_is_one_line_with_its_reason_and_no_traceback(tiny, tmp_path, mlflow_uri):
    proc = sweep(["retriever.k1=0.9,-1", f"dataset.path={tiny}", "tracking.experiment=console"], tmp_path)
    assert proc.returncode == 1
    failed = [line for line in proc.stdout.splitlines() if "FAILED:" in line and "k1=-1" in line]
    assert len(failed) == 1
    assert "ConfigError: config key 'retriever.k1': must be >= 0" in failed[0]
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr
    assert "failed: k1=-1: ConfigError" in proc.stderr  # listed again at the end, where the eye lands
    board = leaderboard(proc.stdout)
    assert [row[1] for row in board] == ["k1=0.9"]  # the finished configuration still ranks


def test_verbose_before_the_command_prints_every_metric(tiny, tmp_path, mlflow_uri):
    proc = cli(["-v", "sweep", "retriever.k1=0.5,1.5", f"dataset.path={tiny}", "tracking.experiment=console",
                f"hydra.sweep.dir={tmp_path / 'multirun'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(config_lines_any(proc.stdout)) == 2
    assert proc.stdout.count("hit_rate") == 2 and proc.stdout.count("chunk_tokens_mean") == 2
    assert re.search(r"^  chunks +60$", proc.stdout, re.M)  # counts print as integers
    assert "Launching 2 jobs" in proc.stderr  # Hydra's own lines are back with -v


def config_lines_any(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r"^\[\d+/2, .*\] k1=", line)]


def test_verbose_after_the_command_says_where_it_goes(tmp_path):
    proc = cli(["sweep", "-v", "quickstart"], tmp_path)
    assert proc.returncode == 2
    assert "-v goes before the command: retrieval-lab -v sweep quickstart" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_mentions_verbose(tmp_path):
    proc = cli(["--help"], tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    assert "-v, --verbose before the command" in text and "retrieval-lab -v sweep" in text


def test_run_prints_integers_as_integers_and_no_library_noise(tiny, tmp_path, mlflow_uri):
    proc = cli(["run", f"dataset.path={tiny}", "retriever=bm25", f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^  chunks +60$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  chunk_tokens_mean +\d+\.\d{4}$", proc.stdout, re.M)  # fractions keep their decimals
    assert "60.0000" not in proc.stdout
    assert "ndcg" in proc.stdout and "mlflow run" in proc.stdout
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise


def test_no_progress_bars_when_stderr_is_not_a_terminal(tiny, tmp_path):
    # 60 passages at batch size 8 would draw an encode bar on a terminal; in a pipe the carriage returns smear.
    # No cache: the embeddings must be computed for a bar to be drawn at all.
    proc = cli(["run", f"dataset.path={tiny}", "retriever=dense", "embedder=wordllama", "embedder.batch_size=8",
                "cache.enabled=false", "tracking.enabled=false", f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path,
               env_extra={"CI": "", "RETRIEVAL_LAB_QUIET": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "encode passages" not in proc.stderr and "\r" not in proc.stderr


def test_no_weight_loading_bar_in_a_redirected_log(tiny, tmp_path):
    # Transformers draws `Loading weights: 100%|...| 103/103` while it loads MiniLM-L6 (issue 32: found in a log).
    proc = cli(["run", f"dataset.path={tiny}", "retriever=dense", "embedder=minilm_l6", "embedder.backend=torch",
                "cache.enabled=false", "tracking.enabled=false", f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path,
               env_extra={"CI": "", "RETRIEVAL_LAB_QUIET": "", "HF_HUB_DISABLE_PROGRESS_BARS": "", "TQDM_DISABLE": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loading weights" not in proc.stderr and "%|" not in proc.stderr and "\r" not in proc.stderr, proc.stderr
