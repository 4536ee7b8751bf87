"""Shared fixtures: the real BEIR datasets beside the checkout, a persistent test cache, a throwaway MLflow store."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Models, embeddings and runs are cached across test sessions so repeated runs are cheap.
os.environ.setdefault("RETRIEVAL_LAB_CACHE", str(REPO / ".cache" / "test-cache"))


def _data_root() -> Path | None:
    for candidate in (os.environ.get("RETRIEVAL_LAB_DATA"), REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / "scifact" / "queries.jsonl").exists():
            return Path(candidate).resolve()
    return None


DATA_ROOT = _data_root()
MISSING_DATA = ("REAL DATASETS NOT FOUND: set RETRIEVAL_LAB_DATA to a folder holding scifact/, nfcorpus/, arguana/, "
                "cranfield/ (BEIR layout) or `retrieval-lab data pull scifact`; tests on real data were SKIPPED")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if DATA_ROOT is None:
        pytest.skip(MISSING_DATA)
    return DATA_ROOT


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def pytest_terminal_summary(terminalreporter):
    if DATA_ROOT is None:
        terminalreporter.write_sep("!", MISSING_DATA, red=True, bold=True)
