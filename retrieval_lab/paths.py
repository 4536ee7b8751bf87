"""Where the config folders are: the config groups (conf/) and studies (experiments/) of the checkout, of
$RETRIEVAL_LAB_HOME, or the copies a wheel installs inside the package; plus the user's own config folder and the
cache root's `conf/` of registered models, which extend them on Hydra's search path."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retrieval_lab.errors import LabError

HOME_ENV = "RETRIEVAL_LAB_HOME"
PERSONAL_CONFIG_ENV = "RETRIEVAL_LAB_CONFIG"
PACKAGE_DIR = Path(__file__).resolve().parent


class ConfigLocationError(LabError):
    """A folder named by an environment variable does not hold what it should."""


@dataclass(frozen=True)
class ConfigHome:
    """The folder holding `conf/` and `experiments/`, and why it was chosen."""

    source: str  # "checkout", "RETRIEVAL_LAB_HOME" or "package"
    root: Path


def checkout_root() -> Path | None:
    """The repository the package is imported from (an editable install or PYTHONPATH), else None."""
    root = PACKAGE_DIR.parent
    # pyproject.toml tells a checkout from a site-packages folder where some other wheel left a top-level conf/
    if (root / "pyproject.toml").is_file() and (root / "conf" / "config.yaml").is_file():
        return root
    return None


def config_home() -> ConfigHome:
    """The first of: the checkout's own folders (development), $RETRIEVAL_LAB_HOME, the installed package's copies."""
    checkout = checkout_root()
    if checkout is not None:
        return ConfigHome("checkout", checkout)
    configured = os.environ.get(HOME_ENV)
    if configured:
        root = Path(configured).expanduser().resolve()
        if not (root / "conf" / "config.yaml").is_file():
            raise ConfigLocationError(
                f"${HOME_ENV}={configured}: no conf/config.yaml under {root}\n  fix: point {HOME_ENV} at a folder "
                f"holding conf/ and experiments/ (a copy of the repository's), or unset it to use the configs "
                f"installed with the package")
        return ConfigHome(HOME_ENV, root)
    if (PACKAGE_DIR / "conf" / "config.yaml").is_file():  # a wheel maps conf/ and experiments/ into the package
        return ConfigHome("package", PACKAGE_DIR)
    raise ConfigLocationError(
        f"no config folders: {PACKAGE_DIR} holds no conf/config.yaml and this is not a checkout\n  fix: reinstall "
        f"retrieval-lab from a wheel or sdist (`pip install .` in the repository), or set {HOME_ENV} to a folder "
        f"holding conf/ and experiments/")


def project_home() -> Path:
    return config_home().root


def conf_dir() -> Path:
    return project_home() / "conf"


def experiments_dir() -> Path:
    return project_home() / "experiments"


def personal_config_dir() -> Path:
    """The user's own config groups and studies: $RETRIEVAL_LAB_CONFIG, else $XDG_CONFIG_HOME/retrieval-lab
    (~/.config/retrieval-lab). It may not exist."""
    configured = os.environ.get(PERSONAL_CONFIG_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "retrieval-lab"


def _existing_personal_config_dir() -> Path | None:
    """The personal config folder when it exists; a missing $RETRIEVAL_LAB_CONFIG folder is an error (a typo would
    otherwise drop the user's options silently), a missing default folder is not."""
    folder = personal_config_dir()
    if folder.is_dir():
        return folder
    if os.environ.get(PERSONAL_CONFIG_ENV):
        raise ConfigLocationError(f"${PERSONAL_CONFIG_ENV}={os.environ[PERSONAL_CONFIG_ENV]}: {folder} is not a "
                                  f"folder\n  fix: create it (it holds config groups such as retriever/NAME.yaml "
                                  f"and studies as experiments/NAME.yaml) or unset {PERSONAL_CONFIG_ENV}")
    return None


def study_dirs() -> list[Path]:
    """Folders of the studies `retrieval-lab sweep NAME` finds: experiments/ of the config home, then the personal
    config folder's experiments/ (when it exists)."""
    personal = _existing_personal_config_dir()
    folders = [experiments_dir()]
    if personal is not None and (personal / "experiments").is_dir():
        folders.append(personal / "experiments")
    return folders


def cache_root(configured: str | Path | None = None) -> Path:
    """The one cache root: `cache.dir` when set, else $RETRIEVAL_LAB_CACHE, else ~/.cache/retrieval-lab."""
    from retrieval_lab.cache import default_cache_dir

    return Path(configured).expanduser() if configured else default_cache_dir()


def user_conf_dir(cache_dir: str | Path | None = None) -> Path:
    """`<cache>/conf`: the config options `train-embedder` / `train-reranker` write for the models they register
    (`embedder=<name>`, `reranker=<name>`)."""
    return cache_root(cache_dir) / "conf"


def extra_config_roots(cache_dirs: list[str | Path | None] | tuple = (None,)) -> list[Path]:
    """Config roots after conf/, in search order: the personal config folder (when it exists) and `<cache>/conf` of
    every cache root the command may use (the `cache.dir` values given on the command line, or the default root for
    `None`). Options with the name of one in conf/ are shadowed by conf/'s."""
    personal = _existing_personal_config_dir()
    roots = [personal] if personal is not None else []
    for cache_dir in cache_dirs or (None,):
        registered = user_conf_dir(cache_dir)
        if registered not in roots:
            roots.append(registered)
    return roots


def hydra_search_path(cache_dirs: list[str | Path | None] | tuple = (None,)) -> str:
    """Hydra's extra search path: the config home (for its experiments/), the personal config folder and
    `<cache>/conf` of every cache root the command may use (see `extra_config_roots`)."""
    entries = [_quoted(f"file://{project_home()}")]
    for root in extra_config_roots(cache_dirs):
        try:
            root.mkdir(parents=True, exist_ok=True)  # Hydra warns about a missing search path entry
        except OSError:
            continue
        entries.append(_quoted(f"file://{root}"))
    return "[" + ",".join(entries) + "]"


def _quoted(text: str) -> str:
    """A string in Hydra's override grammar: a folder may hold spaces, commas or brackets."""
    return "'" + text.replace("'", "\\'") + "'"
