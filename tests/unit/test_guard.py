"""The unit suite's guard fires: a process, a real model or a real dataset in a unit test fails it, with the fix."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

from tests.unit import guard


@contextmanager
def _fails(match: str):
    """The block raises the guard's error, and records exactly that violation (taken here, so this test, which
    provokes it on purpose, is not failed for it)."""
    with pytest.raises(guard.UnitTestGuardError, match=match) as error:
        yield error
    found = guard.take_violations()
    assert len(found) == 1 and str(error.value) == found[0]


def test_a_subprocess_fails_with_the_fix():
    with _fails(r"starts a process \(subprocess\.Popen") as error:
        subprocess.run([sys.executable, "-c", "pass"])
    assert "move this test to tests/integration/" in str(error.value)


def test_os_system_and_fork_and_multiprocessing_fail():
    with _fails("os.system"):
        os.system("true")
    with _fails("os.fork"):
        os.fork()
    with _fails("multiprocessing"):
        process = multiprocessing.get_context("spawn").Process(target=print)
        process.start()


def test_reading_or_listing_the_real_datasets_fails(tmp_path, monkeypatch):
    (tmp_path / "datasets" / "scifact").mkdir(parents=True)
    (tmp_path / "datasets" / "scifact" / "queries.jsonl").write_text("{}\n")
    monkeypatch.setattr(guard, "_data_roots", guard._resolved({tmp_path / "datasets": "the real datasets"}))
    with _fails("lists the real datasets"):
        os.listdir(tmp_path / "datasets")
    with _fails("reads the real datasets"):
        (tmp_path / "datasets" / "scifact" / "queries.jsonl").read_text()
    (tmp_path / "hand-made.jsonl").write_text("{}\n")  # beside the root: allowed
    assert (tmp_path / "hand-made.jsonl").read_text() == "{}\n"


def test_the_configured_data_roots_are_guarded():
    guarded = [root for root, _ in guard._data_roots]
    assert os.path.join(os.path.abspath("/usr/share/R/doc"), "") in guarded
    if os.environ.get("RETRIEVAL_LAB_DATA"):
        assert os.path.join(os.path.abspath(os.environ["RETRIEVAL_LAB_DATA"]), "") in guarded


def test_a_unit_test_runs_on_a_cache_of_its_session_never_the_persistent_one(unit_cache):
    from retrieval_lab.paths import cache_root

    assert cache_root() == unit_cache and os.environ["RETRIEVAL_LAB_CACHE"] == str(unit_cache)
    assert guard.persistent_cache != str(unit_cache)
    if guard.persistent_cache:  # what the session was started with is guarded as real data
        assert os.path.join(os.path.abspath(guard.persistent_cache), "") in [root for root, _ in guard._data_roots]


def test_the_data_root_fixture_fails(request):
    with pytest.raises(pytest.fail.Exception, match="asks for the real datasets"):
        request.getfixturevalue("data_root")


def test_a_bundled_model_file_fails_but_importing_its_package_does_not():
    folder = guard._package_folder("wordllama")
    if folder is None:
        pytest.skip("wordllama is not installed")
    weights = folder / "weights" / "l2_supercat_256.safetensors"
    with _fails("loads a real model's files from the bundled model package wordllama"):
        weights.open("rb")
    (folder / "__init__.py").read_bytes()  # code, not weights
    assert guard.violations == []


def test_an_onnx_session_fails():
    onnxruntime = pytest.importorskip("onnxruntime")
    with _fails(r"loads a real model \(onnxruntime.InferenceSession\)"):
        onnxruntime.InferenceSession(b"not a model")


def test_a_model_library_imported_later_is_guarded_too(tmp_path, monkeypatch):
    """The patch is applied when the library is first imported (here a stand-in package named like model2vec)."""
    package = tmp_path / "model2vec"
    package.mkdir()
    (package / "__init__.py").write_text("class StaticModel:\n"
                                         "    @classmethod\n"
                                         "    def from_pretrained(cls, name):\n"
                                         "        return cls()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "model2vec", raising=False)
    import model2vec

    with _fails(r"model2vec.StaticModel.from_pretrained"):
        model2vec.StaticModel.from_pretrained("minishlab/potion-base-8M")
    with guard.active():  # nested use restores the state before
        pass
    with _fails("model2vec"):
        model2vec.StaticModel.from_pretrained("x")
    monkeypatch.delitem(sys.modules, "model2vec")


def test_outside_a_unit_test_nothing_is_guarded(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    monkeypatch.setattr(guard, "_data_roots", guard._resolved({tmp_path / "datasets": "the real datasets"}))
    with guard.active(False):
        assert os.listdir(tmp_path / "datasets") == []
    with _fails("lists the real datasets"):
        os.listdir(tmp_path / "datasets")


def test_a_swallowed_violation_still_fails_the_phase():
    """The phase wrapper (conftest) fails a test whose code caught the guard's error: the violation was recorded."""
    from tests.unit.conftest import _guarded

    phase = _guarded()
    next(phase)  # the wrapper is now around the test's body
    try:
        os.system("true")
    except guard.UnitTestGuardError:
        pass  # the code under test swallows it
    with pytest.raises(pytest.fail.Exception, match="starts a process"):
        phase.send(None)  # the body returned normally
    assert guard.violations == []



def test_the_model_libraries_patches_guard_their_loaders():
    """Each patch on a stand-in of its library (the real libraries, whose import takes seconds:
    tests/integration/test_unit_guard_libraries.py)."""
    from types import SimpleNamespace

    def init(self, *args, **kwargs):
        self.loaded = True

    def load(cls, *args, **kwargs):
        return SimpleNamespace(loaded=True)

    cases = [("sentence_transformers", "SentenceTransformer", "__init__"),
             ("sentence_transformers", "CrossEncoder", "__init__"),
             ("onnxruntime", "InferenceSession", "__init__"),
             ("transformers.modeling_utils", "PreTrainedModel", "from_pretrained"),
             ("wordllama", "WordLlama", "load"), ("model2vec", "StaticModel", "from_pretrained")]
    for module_name, class_name, method in cases:
        cls = type(class_name, (), {"__init__": init} if method == "__init__" else {method: classmethod(load)})
        guard.PATCHES[module_name](SimpleNamespace(**{class_name: cls}))
        call = cls if method == "__init__" else getattr(cls, method)
        with _fails(rf"loads a real model \(.*{class_name}"):
            call()
        with guard.active(False):  # outside a unit test the loader runs
            assert call().loaded
