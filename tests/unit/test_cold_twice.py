"""benchmarks/cold_twice.py's comparison: every file of a model folder by sha256, but the two that record wall-clock
time; a changed, missing or extra file is a difference."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # it imports benchmarks/reproduce.py as `reproduce`
    spec = importlib.util.spec_from_file_location("benchmarks_cold_twice", REPO / "benchmarks" / "cold_twice.py")
    module = importlib.util.module_from_spec(spec)
    before = set(os.environ)
    try:
        spec.loader.exec_module(module)
    finally:  # the scripts set defaults (CI=1, HF_HUB_OFFLINE=1, ...) for their own runs, not for the other tests
        for key in set(os.environ) - before:
            del os.environ[key]
    return module


def model_folder(folder: Path, weights: bytes, minutes: str) -> Path:
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "training.json").write_text(f'{{"train_seconds": {minutes}}}')
    (folder / "README.md").write_text(f"### Training Time\n- **Training**: {minutes} minutes\n")
    return folder


def test_timed_files_are_left_out_and_any_other_change_is_a_difference(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    a = script.file_hashes(model_folder(tmp_path / "a", b"weights", "55.4"))
    b = script.file_hashes(model_folder(tmp_path / "b", b"weights", "61.0"))
    assert set(a) == {"model.safetensors", "1_Pooling/config.json"} and a == b
    assert script.differences({"m": {"files": a}}, {"m": {"files": b}}) == {"m": []}

    changed = script.file_hashes(model_folder(tmp_path / "c", b"weightz", "55.4"))
    assert script.differences({"m": {"files": a}}, {"m": {"files": changed}}) == {"m": ["model.safetensors"]}
    (tmp_path / "c" / "extra.bin").write_bytes(b"")
    extra = script.file_hashes(tmp_path / "c")
    assert script.differences({"m": {"files": a}}, {"m": {"files": extra}}) == {"m": ["extra.bin",
                                                                                      "model.safetensors"]}
    assert script.differences({"m": {"files": a}}, {}) == {"m": sorted(a)}  # the second try lacks the model
