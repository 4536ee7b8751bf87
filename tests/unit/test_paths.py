"""Config lookup order (checkout, $RETRIEVAL_LAB_HOME, installed package) and the personal config folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_lab import paths

REPO = Path(__file__).resolve().parents[2]


def _config_home(folder: Path) -> Path:
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "config.yaml").write_text("defaults: []\n")
    (folder / "experiments").mkdir()
    return folder


@pytest.fixture()
def installed_package(tmp_path, monkeypatch):
    """The package as a wheel lays it out: site-packages/retrieval_lab/{conf,experiments}, no checkout around it.
    site-packages also holds a stray top-level conf/config.yaml, as a careless wheel may leave there."""
    site = tmp_path / "site-packages"
    package = _config_home(site / "retrieval_lab")
    _config_home(site)
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    return package


def test_a_checkout_comes_first_even_with_retrieval_lab_home_set(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(_config_home(tmp_path / "home")))
    assert paths.config_home() == paths.ConfigHome("checkout", REPO)
    assert paths.conf_dir() == REPO / "conf" and paths.checkout_root() == REPO


def test_retrieval_lab_home_comes_before_the_installed_package(installed_package, tmp_path, monkeypatch):
    assert paths.checkout_root() is None
    assert paths.config_home() == paths.ConfigHome("package", installed_package)
    assert paths.experiments_dir() == installed_package / "experiments"
    home = _config_home(tmp_path / "home")
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    assert paths.config_home() == paths.ConfigHome(paths.HOME_ENV, home)


def test_a_home_without_conf_is_an_error_naming_the_variable(installed_package, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "empty"))
    with pytest.raises(paths.ConfigLocationError, match=r"\$RETRIEVAL_LAB_HOME=.*empty: no conf/config.yaml"):
        paths.conf_dir()


def test_a_package_without_configs_says_how_to_reinstall(installed_package, monkeypatch):
    monkeypatch.setattr(paths, "PACKAGE_DIR", installed_package.parent / "elsewhere" / "retrieval_lab")
    with pytest.raises(paths.ConfigLocationError, match="reinstall"):
        paths.config_home()


def test_personal_folder_joins_the_search_path_and_the_studies(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.PERSONAL_CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "cache"
    personal = tmp_path / "xdg" / "retrieval-lab"
    assert paths.personal_config_dir() == personal
    assert paths.extra_config_roots([str(cache)]) == [cache / "conf"]  # absent: left out, not created
    assert paths.study_dirs() == [REPO / "experiments"]

    (personal / "experiments").mkdir(parents=True)
    assert paths.extra_config_roots([str(cache)]) == [personal, cache / "conf"]
    assert paths.hydra_search_path([str(cache)]) == f"['file://{REPO}','file://{personal}','file://{cache / 'conf'}']"
    assert paths.study_dirs() == [REPO / "experiments", personal / "experiments"]

    monkeypatch.setenv(paths.PERSONAL_CONFIG_ENV, str(tmp_path / "mine"))  # the variable wins over XDG
    with pytest.raises(paths.ConfigLocationError, match=r"\$RETRIEVAL_LAB_CONFIG=.*mine.* is not a folder"):
        paths.hydra_search_path([str(cache)])
    (tmp_path / "mine").mkdir()
    assert paths.extra_config_roots([str(cache)])[0] == tmp_path / "mine"
