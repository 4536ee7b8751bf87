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


def cache_root(configured: str | Path | None = None) -> Path:
    """The one cache root: `cache.dir` when set, else $RETRIEVAL_LAB_CACHE, else ~/.cache/retrieval-lab."""
    from retrieval_lab.cache import default_cache_dir

    return Path(configured).expanduser() if configured else default_cache_dir()


def user_conf_dir(cache_dir: str | Path | None = None) -> Path:
    """`<cache>/conf`: the config options `train-embedder` / `train-reranker` write for the models they register
    (`embedder=<name>`, `reranker=<name>`)."""
    return cache_root(cache_dir) / "conf"


def hydra_search_path(cache_dirs: list[str | Path | None] | tuple = (None,)) -> str:
    """Hydra's extra search path: the project home (experiments/) and `<cache>/conf` of every cache root the command
    may use (the `cache.dir` values given on the command line, or the default root for `None`)."""
    entries = [_quoted(f"file://{project_home()}")]
    for cache_dir in cache_dirs or (None,):
        user_conf = user_conf_dir(cache_dir)
        try:
            user_conf.mkdir(parents=True, exist_ok=True)  # Hydra warns about a missing search path entry
        except OSError:
            continue
        if _quoted(f"file://{user_conf}") not in entries:
            entries.append(_quoted(f"file://{user_conf}"))
    return "[" + ",".join(entries) + "]"


def _quoted(text: str) -> str:
    """A string in Hydra's override grammar: a folder may hold spaces, commas or brackets."""
    return "'" + text.replace("'", "\\'") + "'"
