"""Errors that reach the user: each says where the problem is (file and line, or config key) and how to fix it.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class LabError(Exception):
    """Base class for errors the user can fix."""


class DataError(LabError):
    """A dataset file is missing or malformed."""

    def __init__(self, path, message: str, line: int | None = None, fix: str | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        text = f"{where}: {message}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)
        self.path, self.line = path, line


class ConfigError(LabError):
    """A configuration value is invalid; raised before any work starts."""

    def __init__(self, key: str, message: str, fix: str | None = None):
        text = f"config key '{key}': {message}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)
        self.key = key


class ModelNotFoundError(LabError):
    """A model cannot be loaded offline."""


class CacheError(LabError):
    """A cache entry cannot be read or written."""


class LeakageError(LabError):
    """Training would use queries of the split being evaluated."""
