"""What a cache hit checks and what it does not, `cache verify`, the written digests and the per-stage code versions."""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import retrieval_lab
from retrieval_lab import cache as cache_module
from retrieval_lab.cache import (CODE_VERSIONS, EDGE, MANIFEST, Cache, content_key, file_edges_sha256, file_sha256,
                                 write_bytes, write_npy)
from retrieval_lab.cli import main as cli_main

# large enough that the middle of the file is outside the first and last EDGE bytes that `load` hashes
ROWS, COLS = 400, 384


def _compute(value: float, calls: list):
    def compute():
        calls.append(1)
        return {"embeddings": np.full((ROWS, COLS), value, dtype=np.float32)}, {"note": "x"}, {}
    return compute


def _filled(tmp_path: Path, stage: str = "embeddings", inputs=None) -> tuple[Cache, Path, list]:
    cache, calls = Cache(tmp_path), []
    inputs = inputs or {"a": 1}
    cache.get_or_compute(stage, inputs, _compute(1.0, calls))
    return cache, cache._dir(stage, content_key(stage, inputs)), calls


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    assert len(data) > 2 * EDGE + 2
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "missing", "zero_tail", "extend"])
def test_damage_a_hit_checks_for_is_detected_and_rebuilt(tmp_path, caplog, damage):
    cache, folder, calls = _filled(tmp_path)
    npy = folder / "embeddings.npy"
    data = npy.read_bytes()
    if damage == "truncate":
        npy.write_bytes(data[:len(data) // 2])
    elif damage == "missing":
        npy.unlink()
    elif damage == "zero_tail":  # same size, the last pages never reached the disk
        npy.write_bytes(data[:-4096] + bytes(4096))
    else:
        npy.write_bytes(data + b"\0" * 8)
    with caplog.at_level("WARNING"):
        entry = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert not entry.hit and len(calls) == 2
    assert "corrupted" in caplog.text and "rebuilding" in caplog.text and "embeddings.npy" in caplog.text
    np.testing.assert_array_equal(entry.arrays["embeddings"], np.ones((ROWS, COLS), dtype=np.float32))
    assert cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls)).hit


def test_bit_flip_in_the_middle_passes_a_hit_but_not_verify(tmp_path, capsys):
    cache, folder, calls = _filled(tmp_path)
    _flip_middle_byte(folder / "embeddings.npy")
    entry = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert entry.hit and len(calls) == 1  # the cheap checks on read do not hash the whole file
    assert not np.array_equal(np.asarray(entry.arrays["embeddings"]), np.ones((ROWS, COLS), dtype=np.float32))
    del entry

    damaged = cache.verify()
    assert [(info.stage, info.key, problem) for info, problem in damaged] == [
        ("embeddings", folder.name, "embeddings.npy: sha256 differs from the one recorded when it was written")]
    assert folder.exists()  # verify alone deletes nothing

    assert cli_main(["cache", "verify", "--dir", str(tmp_path), "--delete"]) == 1
    out = capsys.readouterr().out
    assert f"corrupt  embeddings         {folder.name[:16]}" in out
    assert "1 corrupt" in out and "deleted 1" in out
    assert not folder.exists()
    assert cli_main(["cache", "verify", "--dir", str(tmp_path)]) == 0
    rebuilt = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert not rebuilt.hit and len(calls) == 2
    np.testing.assert_array_equal(rebuilt.arrays["embeddings"], np.ones((ROWS, COLS), dtype=np.float32))


def test_payload_is_checked_in_full_on_a_hit(tmp_path, caplog):
    cache, calls = Cache(tmp_path), []
    ids = [f"doc{i:06d}" for i in range(3 * EDGE // 10)]

    def compute():
        calls.append(1)
        return None, {"ids": ids}, {}

    cache.get_or_compute("step_runs", {"a": 1}, compute)
    payload = cache._dir("step_runs", content_key("step_runs", {"a": 1})) / "payload.json"
    text = payload.read_text()
    middle = text.index("doc", len(text) // 2)
    payload.write_text(text[:middle] + "DOC" + text[middle + 3:])  # still valid JSON, same size
    with caplog.at_level("WARNING"):
        entry = cache.get_or_compute("step_runs", {"a": 1}, compute)
    assert not entry.hit and len(calls) == 2 and entry.payload == {"ids": ids}
    assert "payload.json: sha256 differs" in caplog.text


def test_cache_verify_exit_codes_and_stage_filter(tmp_path, capsys):
    cache, emb_folder, _ = _filled(tmp_path, "embeddings")
    _, idx_folder, _ = _filled(tmp_path, "indexes")
    assert cli_main(["cache", "verify", "--dir", str(tmp_path)]) == 0
    assert "verified 2 entries" in capsys.readouterr().out

    _flip_middle_byte(emb_folder / "embeddings.npy")
    assert cli_main(["cache", "verify", "--dir", str(tmp_path), "--stage", "indexes"]) == 0
    assert "verified 1 entries" in capsys.readouterr().out
    assert cli_main(["cache", "verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert emb_folder.name[:16] in out and idx_folder.name[:16] not in out and "--delete" in out
    assert emb_folder.exists()

    (idx_folder / MANIFEST).write_text("{not json")
    assert cli_main(["cache", "verify", "--dir", str(tmp_path), "--stage", "indexes"]) == 1
    assert "unreadable manifest" in capsys.readouterr().out

    assert cli_main(["cache", "verify", "--dir", str(tmp_path), "--stage", "embedings"]) == 2
    err = capsys.readouterr().err
    assert "--stage embedings" in err and "embeddings" in err


def test_entry_in_the_old_manifest_format_is_rebuilt_and_reported(tmp_path, capsys):
    cache, folder, calls = _filled(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"] = {name: record["sha256"] for name, record in manifest["files"].items()}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert cli_main(["cache", "verify", "--dir", str(tmp_path)]) == 1
    assert "older lab version" in capsys.readouterr().out
    assert not cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls)).hit


def test_manifest_digests_match_the_files_on_disk(tmp_path):
    _, folder, _ = _filled(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["code_version"] == CODE_VERSIONS["embeddings"]
    assert set(manifest["files"]) == {"embeddings.npy", "payload.json"}
    for name, record in manifest["files"].items():
        path = folder / name
        assert record["bytes"] == path.stat().st_size
        assert record["sha256"] == file_sha256(path)
        assert record["edges_sha256"] == file_edges_sha256(path, path.stat().st_size)


@pytest.mark.parametrize("array", [
    np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    np.arange(12, dtype=np.float32).reshape(3, 4).T,  # not C-contiguous
    np.zeros((0, 384), dtype=np.float32),
    np.frombuffer(b"onnx graph bytes", dtype=np.uint8),
    np.float64(3.5),
    np.random.default_rng(0).standard_normal((300, 257)).astype(">f4"),  # big-endian, odd row size
], ids=["int64-3d", "transposed", "empty", "bytes", "scalar", "big-endian"])
def test_write_npy_writes_what_np_save_writes(tmp_path, array):
    record = write_npy(tmp_path / "a.npy", array)
    expected = io.BytesIO()
    np.save(expected, np.ascontiguousarray(array), allow_pickle=False)  # C order, at least 1-d, as ever
    assert (tmp_path / "a.npy").read_bytes() == expected.getvalue()
    assert record["sha256"] == hashlib.sha256(expected.getvalue()).hexdigest()
    assert record["bytes"] == len(expected.getvalue())


def test_write_npy_refuses_object_arrays(tmp_path):
    with pytest.raises(retrieval_lab.errors.CacheError, match="pickling"):
        write_npy(tmp_path / "a.npy", np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("size", [0, 10, EDGE - 1, EDGE, EDGE + 1, 2 * EDGE, 2 * EDGE + 7, 5 * EDGE + 3])
def test_edges_digest_while_writing_equals_the_one_read_back(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "blob"
    record = write_bytes(path, data)
    assert record["edges_sha256"] == file_edges_sha256(path, size)
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == size


def test_code_version_is_part_of_the_key(tmp_path, monkeypatch):
    cache, calls = Cache(tmp_path), []
    before = content_key("embeddings", {"a": 1})
    cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    monkeypatch.setitem(CODE_VERSIONS, "embeddings", CODE_VERSIONS["embeddings"] + 1)
    assert content_key("embeddings", {"a": 1}) != before
    assert content_key("passages", {"a": 1}) == content_key("passages", {"a": 1})
    entry = cache.get_or_compute("embeddings", {"a": 1}, _compute(1.0, calls))
    assert not entry.hit and len(calls) == 2  # what the old code wrote is not replayed


def test_unknown_stage_is_a_programming_error(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(ValueError, match="unknown cache stage 'embedding'.*CODE_VERSIONS"):
        content_key("embedding", {"a": 1})
    with pytest.raises(ValueError, match="unknown cache stage"):
        cache.get_or_compute("embedding", {"a": 1}, _compute(1.0, []))
    with pytest.raises(ValueError, match="unknown cache stage"):
        cache.save("embedding", "0" * 64, {"x": np.zeros(3)})
    assert not (tmp_path / "embedding").exists()


def test_every_stage_the_package_keys_has_a_code_version():
    package = Path(retrieval_lab.__file__).parent
    used = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        used.update(re.findall(r"(?:get_or_compute|get_or_write|content_key)\(\s*\"(\w+)\"", text))
        used.update(f"train_{kind}" for kind in re.findall(r"train_once\(\s*\"(\w+)\"", text))  # its key's stage
    assert {"passages", "embeddings", "indexes", "onnx_models", "step_runs", "train_embedder"} <= used
    assert used <= set(CODE_VERSIONS), sorted(used - set(CODE_VERSIONS))
    assert cache_module.code_version("passages") == CODE_VERSIONS["passages"]
