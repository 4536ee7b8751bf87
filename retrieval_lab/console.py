"""How much the CLI prints: compact by default, everything with `retrieval-lab -v COMMAND`.

The choice travels in environment variables so that Hydra jobs, joblib workers and MLflow (which reads
`MLFLOW_LOGGING_LEVEL` when it is imported) all see it:
- `RETRIEVAL_LAB_VERBOSE=1`: sweeps print each configuration's full metrics table and failures' tracebacks;
- `RETRIEVAL_LAB_LOG_LEVEL`: the console log level (WARNING, or INFO with -v); conf/config.yaml hands it to Hydra's
  job and launcher logging, so "[HYDRA] Launching jobs" and library INFO/DEBUG lines only show with -v;
- `RETRIEVAL_LAB_QUIET=1` when stderr is not a terminal: progress bars redraw with carriage returns, which in a log
  file or a pipe become one long smear, so they are off there; the libraries' own bars too (LIBRARY_BARS_OFF).
"""
from __future__ import annotations

import logging
import os
import sys

VERBOSE_ENV = "RETRIEVAL_LAB_VERBOSE"
LOG_LEVEL_ENV = "RETRIEVAL_LAB_LOG_LEVEL"
NO_PROGRESS_ENV = "RETRIEVAL_LAB_QUIET"  # read by dense.progress.progress_enabled
# Bars drawn by libraries, not the lab: Transformers' "Loading weights" (it follows the Hugging Face Hub switch),
# the Hub's downloads, and any other tqdm bar (tqdm reads TQDM_DISABLE as its default).
LIBRARY_BARS_OFF = ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def set_verbosity(enabled: bool) -> None:
    """Record the choice for this process and every process it starts; configure logging for non-Hydra commands."""
    os.environ[VERBOSE_ENV] = "1" if enabled else "0"
    os.environ[LOG_LEVEL_ENV] = "INFO" if enabled else "WARNING"
    if not enabled and not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        # MLflow logs its SQLite schema migrations at INFO through its own handler, whatever the root logger says.
        os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
    if not _is_terminal(sys.stderr):
        os.environ[NO_PROGRESS_ENV] = "1"
        for name in LIBRARY_BARS_OFF:  # set before the libraries are imported (they read them at import)
            if not os.environ.get(name):
                os.environ[name] = "1"
    configure_logging()


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def log_level() -> int:
    return logging.INFO if verbose() else logging.WARNING


def configure_logging() -> None:
    """One stderr handler on the root logger at the chosen level.

    The level sits on the handler, not only on the root logger: some libraries (bm25s) set their own logger to
    DEBUG on import, and a record from such a logger reaches the root's handlers without the root's level check.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "retrieval_lab_console", False)]:
        root.removeHandler(old)  # called again (in-process callers): replace ours, keep anyone else's
    handler = CurrentStderrHandler()
    handler.retrieval_lab_console = True
    handler.setLevel(log_level())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(FirstTimeOnly())
    root.addHandler(handler)
    root.setLevel(log_level())


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a record comes (as logging's last-resort handler does), so a command
    called in-process with stderr redirected or captured, then restored, never writes to a closed stream."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class FirstTimeOnly(logging.Filter):
    """Lets each distinct log message reach the console once per process, unless -v.

    A sweep's configurations on one dataset repeat the same data warnings; the first says it all.
    """

    _seen: set = set()  # class-level: Hydra builds new handlers and filters for every job of a sweep

    def filter(self, record: logging.LogRecord) -> bool:
        if verbose():
            return True
        key = (record.name, record.levelno, record.getMessage())
        if key in FirstTimeOnly._seen:
            return False
        FirstTimeOnly._seen.add(key)
        return True


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
