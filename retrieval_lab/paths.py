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
