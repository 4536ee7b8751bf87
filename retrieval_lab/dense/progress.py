"""Progress bars of long encodes and index builds: on in a terminal, off in CI or with RETRIEVAL_LAB_QUIET."""
from __future__ import annotations

import os


def progress_enabled(setting: bool | None) -> bool:
    if setting is not None:
        return bool(setting)
    return not os.environ.get("CI") and not os.environ.get("RETRIEVAL_LAB_QUIET")


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "passages"):
    """A tqdm bar with rate and ETA on stderr, or a no-op when quiet (CI, progress: false)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=f" {unit}", disable=not progress_enabled(enabled), leave=False,
                mininterval=1.0, smoothing=0.1)
