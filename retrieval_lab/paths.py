"""Where the project's config folders are: beside the package in a checkout, or $RETRIEVAL_LAB_HOME."""
from __future__ import annotations

import os
from pathlib import Path


def project_home() -> Path:
    home = os.environ.get("RETRIEVAL_LAB_HOME")
    return Path(home).resolve() if home else Path(__file__).resolve().parent.parent


def conf_dir() -> Path:
    return project_home() / "conf"


def experiments_dir() -> Path:
    return project_home() / "experiments"


def hydra_search_path() -> str:
    """Hydra's extra search path: the project home (experiments/) and `<cache>/conf`, where `train-embedder` and
    `train-reranker` write the config options of the models they register (`embedder=<name>`, `reranker=<name>`)."""
    from retrieval_lab.cache import default_cache_dir

    user_conf = default_cache_dir() / "conf"
    try:
        user_conf.mkdir(parents=True, exist_ok=True)  # Hydra warns about a missing search path entry
    except OSError:
        return f"[file://{project_home()}]"
    return f"[file://{project_home()},file://{user_conf}]"
