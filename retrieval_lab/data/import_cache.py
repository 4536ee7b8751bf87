"""A folder of documents imported once per content under the cache (`dataset.path=<folder>`): the import's name
holds a hash of the importer version, the parsing libraries, the include patterns and every document's path and
content, so an unchanged folder reuses its import and a changed one is imported again, reusing the unchanged
documents of its latest earlier import (data/folder.py does the importing)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from retrieval_lab.config import check_choice
from retrieval_lab.data.folder import (CORPUS, FORMATS, IMPORTER_VERSION, MANIFEST, ON_ERROR, ImportReport,
                                       import_folder, include_patterns, included, log_report, manifest_report,
                                       report_skipped, scan)
from retrieval_lab.data.formats import library_versions


def import_into_cache(source: str | Path, cache_root: str | Path, on_error: str = "skip", include=None) -> Path:
    """The import of `source` (its files matching `include`, when given) under `<cache_root>/datasets/`, keyed by
    the content of its documents and the include patterns: made once per content; a changed folder reuses the
    unchanged documents of its latest earlier import."""
    check_choice("dataset.on_error", on_error, ON_ERROR)  # a cached import must not accept what a new one refuses
    source = Path(source).expanduser().resolve()
    datasets = Path(cache_root).expanduser() / "datasets"
    include = include_patterns(include)
    key = content_key(source, include)
    dest = datasets / f"{source.name}-import-{key[:16]}"
    if (dest / MANIFEST).exists() and (dest / CORPUS).exists():
        report = manifest_report(dest, source, include)
        for rel, reason in report.skipped:  # the cached import may have skipped what on_error=fail must refuse
            report_skipped(ImportReport(source, dest), source, rel, reason, on_error)
        log_report(report)  # every run that uses the import says what it left out, not only the first
        return dest
    datasets.mkdir(parents=True, exist_ok=True)
    tmp = datasets / f".{dest.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        report = import_folder(source, tmp, on_error, reuse_from=_latest_import_of(source, datasets),
                               include=include)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished the same import first: theirs is identical
            if not (dest / MANIFEST).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.dest = dest
    log_report(report)
    return dest


def content_key(source: Path, include: list[str] | None = None) -> str:
    """sha256 of the importer version, the parsing libraries, the include patterns and every imported document's
    path and content."""
    h = hashlib.sha256(json.dumps([IMPORTER_VERSION, library_versions(), include]).encode())
    for rel, path in scan(source):
        if path.suffix.lower() in FORMATS and included(rel, include):
            h.update(rel.encode("utf-8") + b"\x00")
            with open(path, "rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _latest_import_of(source: Path, datasets: Path) -> Path | None:
    candidates = []
    for manifest in datasets.glob(f"{source.name}-import-*/{MANIFEST}"):
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("source") == str(source):
                candidates.append((manifest.stat().st_mtime_ns, manifest.parent))
        except (OSError, ValueError):
            continue
    return max(candidates)[1] if candidates else None
