"""Where a dataset comes from: <root>/<name>, $RETRIEVAL_LAB_DATA, or any folder / zip via dataset.path."""
from __future__ import annotations

import zipfile

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.pipeline.tracked import experiment_name
from tests.unit.test_data_errors import make_beir


def test_root_from_config_and_environment(tmp_path, monkeypatch):
    make_beir(tmp_path / "scifact")
    cfg = compose_config([f"dataset.root={tmp_path}"])
    assert len(load_dataset(cfg.dataset).corpus) == 2
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(tmp_path))
    assert load_dataset(compose_config([]).dataset).name == "scifact"


def test_any_folder_via_path(tmp_path):
    make_beir(tmp_path / "my_docs")
    ds = load_dataset(compose_config([f"dataset.path={tmp_path / 'my_docs'}"]).dataset)
    assert ds.name == "my_docs" and ds.queries.ids == ["q1", "q2"]


def test_zip_via_path_is_unpacked_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(tmp_path / "cache"))
    folder = make_beir(tmp_path / "src" / "zipped")
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as zf:
        for path in folder.rglob("*"):
            if path.is_file():
                zf.write(path, f"zipped/{path.relative_to(folder)}")
    ds = load_dataset(compose_config([f"dataset.path={tmp_path / 'zipped.zip'}"]).dataset)
    assert ds.name == "zipped" and len(ds.corpus) == 2
    assert (tmp_path / "cache" / "datasets").is_dir()


def test_identical_ids_setting_per_dataset():
    assert compose_config(["dataset=arguana"]).dataset.ignore_identical_ids is True
    assert compose_config(["dataset=scifact"]).dataset.ignore_identical_ids is False


@pytest.mark.parametrize("overrides,expected", [
    ([], "scifact"),
    (["dataset=nfcorpus"], "nfcorpus"),
    (["dataset.path=/somewhere/my_docs/"], "my_docs"),
    (["dataset.path=/somewhere/export.zip"], "export"),
    (["dataset.path='https://example.org/sets/fiqa.zip?x=1'"], "fiqa"),
    (["dataset.path=/somewhere/my_docs", "tracking.experiment=mine"], "mine"),
])
def test_runs_are_logged_under_the_datasets_own_name(overrides, expected):
    assert experiment_name(compose_config(overrides)) == expected
