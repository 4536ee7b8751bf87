"""The unit suite's guard (tests/unit/guard.py): a unit test, or a fixture it sets up, that loads a real model, starts
a process or reads a real dataset fails with a message saying to move it to tests/integration/. Each unit test runs
with a cache of this session's own (RETRIEVAL_LAB_CACHE), never the persistent test cache the integration tests
share."""
from __future__ import annotations

import os

import pytest

from tests.conftest import DATA_ROOT
from tests.unit import guard

guard.install(DATA_ROOT, os.environ.get("RETRIEVAL_LAB_CACHE"))


@pytest.fixture(autouse=True)
def unit_cache(tmp_path_factory, monkeypatch):
    """The default cache of a unit test: a folder of this session's, shared by its unit tests."""
    folder = tmp_path_factory.getbasetemp() / "unit-cache"
    monkeypatch.setenv("RETRIEVAL_LAB_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def data_root():
    pytest.fail(f"{guard.RULE}; this one asks for the real datasets (the data_root fixture)\n  fix: {guard.MOVE}",
                pytrace=False)


def _guarded():
    """Run a test phase with the guard on; fail it when a violation was caught and swallowed by the code under test."""
    guard.take_violations()
    with guard.active():
        try:
            result = yield
        finally:
            found = guard.take_violations()
    if found:
        pytest.fail(found[0], pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _guarded())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _guarded())
