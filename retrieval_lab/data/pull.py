"""Fetch a BEIR zip by URL, check its published md5, and unpack it; nothing half-written is ever left behind."""
from __future__ import annotations

import hashlib
import http.client
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from retrieval_lab.errors import DataError


def _unpacked_root(tmp: Path) -> Path:
    """BEIR zips hold one top folder (`scifact/...`); accept a flat zip too."""
    entries = [p for p in tmp.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return tmp


def unpack_zip(zip_path: Path, dest: Path) -> Path:
    """Extract into a temporary sibling of `dest`, then rename into place (atomic on one filesystem)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.unpack-") as tmp:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for member in zf.namelist():
                    target = (Path(tmp) / member).resolve()
                    if not target.is_relative_to(Path(tmp).resolve()):
                        raise DataError(zip_path, f"refusing to unpack '{member}' outside the target folder")
                zf.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise DataError(zip_path, f"not a valid zip ({exc})", fix="download it again") from None
        root = _unpacked_root(Path(tmp))
        if not (root / "queries.jsonl").exists():
            raise DataError(zip_path, "the zip holds no queries.jsonl: not a BEIR dataset")
        if dest.exists():
            shutil.rmtree(dest)
        root.rename(dest)
    return dest


def download(url: str, dest: Path, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` via a temporary file; a wrong checksum or short read leaves no `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            expected = resp.headers.get("Content-Length")
            received = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise DataError(url, f"truncated download: {received} of {expected} bytes", fix="try again")
        if md5 and digest.hexdigest() != md5:
            raise DataError(url, f"md5 mismatch: got {digest.hexdigest()}, expected {md5}",
                            fix="the download is corrupt or the file changed upstream; try again")
        part.rename(dest)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DataError(url, f"download failed: {exc}", fix="check the URL and your network") from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def pull(name: str, url: str, root: Path, md5: str | None = None) -> Path:
    """Download and unpack dataset `name` into `root/name`."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}.download-") as tmp:
        zip_path = download(url, Path(tmp) / f"{name}.zip", md5)
        return unpack_zip(zip_path, root / name)
