"""An unusable tracking store is a clear error naming the URI and the fix, before any pipeline work, exit code 2.

Through the CLI in a subprocess, with `tracking.enabled` left on. The dataset points at a folder that does not
exist: if the pipeline started before the store was checked, the error would be about the data instead.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from retrieval_lab import tracking
from retrieval_lab.errors import LabError
from tests.integration.sweep_util import cli


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_under_a_file(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("not a folder")
    return f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'mlflow.db'}"


def read_only_folder(tmp_path: Path) -> str:
    """A folder that exists but takes no new files; root ignores permission bits, /proc refuses new files to all."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return f"sqlite:///{folder / 'mlflow.db'}"
    if not Path("/proc/self").is_dir():
        pytest.skip("running as root without /proc: no folder refuses new files")
    return "sqlite:////proc/mlflow.db"


def database_is_a_folder(tmp_path: Path) -> str:
    (tmp_path / "mlflow.db").mkdir()
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def server_not_answering(tmp_path: Path) -> str:
    return f"http://127.0.0.1:{closed_port()}"


STORES = {  # case -> (URI maker, words the reason must contain)
    "sqlite folder cannot be created": (folder_under_a_file, "cannot be created"),
    "sqlite folder not writable": (read_only_folder, "is not writable"),
    "sqlite database is a folder": (database_is_a_folder, "is not a file"),
    "http server not answering": (server_not_answering, "no tracking server answers"),
}


def assert_clear_store_error(proc, uri: str, reason: str) -> None:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot use the MLflow tracking store {uri}" in proc.stderr, proc.stderr[-2000:]
    assert reason in proc.stderr and "fix:" in proc.stderr and "MLFLOW_TRACKING_URI" in proc.stderr
    assert "nothing-here" not in proc.stdout + proc.stderr  # no dataset was read before the store was checked


@pytest.mark.parametrize("case", list(STORES))
def test_run_refuses_an_unusable_store_before_any_work(case, tmp_path):
    make_uri, reason = STORES[case]
    uri = make_uri(tmp_path)
    proc = cli(["run", "dataset=scifact", f"dataset.root={tmp_path / 'nothing-here'}",
                f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path, env_extra={"MLFLOW_TRACKING_URI": uri},
               timeout=120)
    assert_clear_store_error(proc, uri, reason)
    if case == "http server not answering":  # MLflow's own retries would take minutes; the check has none
        assert f"--port {uri.rsplit(':', 1)[1]}" in proc.stderr  # the fix says how to start that server


@pytest.mark.parametrize("case", list(STORES))
def test_sweep_refuses_an_unusable_store_before_any_configuration(case, tmp_path):
    make_uri, reason = STORES[case]
    uri = make_uri(tmp_path)
    proc = cli(["sweep", "retriever.k1=0.5,1.5", f"dataset.path={tmp_path / 'nothing-here'}",
                f"hydra.sweep.dir={tmp_path / 'multirun'}"], tmp_path, env_extra={"MLFLOW_TRACKING_URI": uri},
               timeout=120)
    assert_clear_store_error(proc, uri, reason)
    assert "configs" not in proc.stdout  # no configuration line: the sweep never started


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_the_issue_example_under_proc(tmp_path):
    uri = "sqlite:////proc/x/mlflow.db"
    proc = cli(["run", "dataset=scifact", f"dataset.root={tmp_path / 'nothing-here'}", "retriever=bm25",
                f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path, env_extra={"MLFLOW_TRACKING_URI": uri}, timeout=120)
    assert_clear_store_error(proc, uri, "its folder /proc/x cannot be created")


def test_the_error_names_where_the_uri_came_from(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = folder_under_a_file(tmp_path)
    with pytest.raises(tracking.TrackingStoreError, match="from tracking.uri") as info:
        tracking.check_store({"uri": uri})
    assert isinstance(info.value, LabError) and info.value.uri == uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(tracking.TrackingStoreError, match="from MLFLOW_TRACKING_URI"):
        tracking.check_store({"uri": uri})  # conf/tracking/default.yaml copies the variable into tracking.uri


def test_an_uncreatable_default_root_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(tracking.TrackingStoreError, match="tracking.root") as info:
        tracking.check_store({"root": str(tmp_path / "a-file" / "mlruns")})
    assert "cannot be created" in str(info.value)


def test_a_usable_store_is_created_and_returned(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    assert tracking.check_store({"uri": uri}) == uri
    assert (tmp_path / "new" / "mlflow.db").is_file()
    assert not list((tmp_path / "new").glob(".write-check-*"))  # the write probe leaves nothing behind
    assert tracking.check_store({"uri": uri}) == uri  # an existing store passes too


def test_the_check_does_not_leave_short_retries_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with pytest.raises(tracking.TrackingStoreError):
        tracking.check_store({"uri": f"http://127.0.0.1:{closed_port()}"})
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"  # the runs themselves keep the user's retries
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", [
    ["train-embedder", "dataset=scifact", "split=train", "base=minilm_l6"],
    ["evaluate", "--experiment", "elsewhere", "dataset=scifact"],
])
def test_training_and_logged_evaluations_check_the_store_first(command, tmp_path):
    uri = "sqlite:////proc/x/mlflow.db"
    proc = cli([*command, f"dataset.root={tmp_path / 'nothing-here'}"], tmp_path,
               env_extra={"MLFLOW_TRACKING_URI": uri}, timeout=120)
    assert_clear_store_error(proc, uri, "its folder /proc/x cannot be created")
