"""Import a folder of documents (Markdown, text, HTML, PDF) as a BEIR corpus: `corpus.jsonl` plus `manifest.json`.

Each document's id is its path relative to the folder (POSIX), its title comes from the document (see
`retrieval_lab.data.formats`), else the file name, and its metadata holds:
- `source`: the file's relative `path`, `format`, `bytes`, `mtime` (UTC), `sha256`, format details (`encoding`,
  `pages`; `line_starts`, the offset of each line of an unpaged file) and `map`, the source map from imported-text
  offsets back to (page, offset) in the file;
- `sections`: `[start, end, heading, path, anchor]` character spans of the imported text, from one heading (any
  level) to the next, long ones cut into parts (`retrieval_lab.data.formats`);
- `anchors`: `[offset, id]` of every link target (HTML element ids, Markdown heading slugs);
- `boilerplate`: how many lines and characters were dropped as repeated across the folder (data/boilerplate.py).

`source_location(metadata, offset)` (data/places.py) is the one accessor for where a text offset comes from: file,
page, offset and line in the file, heading path and nearest anchor. An import keyed by content under the cache, as
`dataset.path=<folder>` makes, is data/import_cache.py.

The manifest records every file seen (size, mtime, sha256, status and the reason a file was skipped), so importing
into the same place again reads only files whose size or mtime changed, and re-parses only those whose content did.
Hidden files and folders (names starting with a dot) are not documents and are not looked at. `include` (glob
patterns, `dataset.include` / `--include`) narrows the import to the files whose relative path matches one of them,
matched from the right as `pathlib.PurePath.match` does (`*.html` matches at any depth, `guide/*.md` a `guide`
folder anywhere); null imports every file of a supported format.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from retrieval_lab.config import check_choice
from retrieval_lab.data.boilerplate import BoilerplateReport, drop_boilerplate
from retrieval_lab.data.formats import FORMATS, UnreadableFile, library_versions, reader
from retrieval_lab.errors import ConfigError, DataError, LabError

log = logging.getLogger(__name__)

IMPORTER_VERSION = 3  # bump when extraction changes: earlier imports are then read again, not reused
MANIFEST = "manifest.json"
CORPUS = "corpus.jsonl"
EXTRACTED = "extracted.jsonl"  # each document as read, before boilerplate is cut: what a re-import reuses
ON_ERROR = ("skip", "fail")
UNSUPPORTED_SHOWN = 10  # unsupported files listed one by one in a report; the rest are counted by suffix


@dataclass
class ImportReport:
    source: Path
    dest: Path
    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of unreadable documents
    unsupported: list[str] = field(default_factory=list)  # files of a format that is not imported
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, note) of imported files
    parsed: int = 0  # documents read and extracted by this import
    excluded: int = 0  # files left out by the include patterns
    include: list[str] | None = None
    reused: int = 0  # documents taken unchanged from the previous import
    cached: bool = False  # the whole import reused as it was (a report read from its manifest)
    boilerplate: BoilerplateReport | None = None  # lines cut as repeated across the folder

    def lines(self) -> list[str]:
        if self.cached:
            out = [f"{len(self.imported)} documents from {self.source}, as imported before (unchanged since; cached "
                   f"in {self.dest}); skipped {len(self.skipped) + len(self.unsupported)}"]
        else:
            out = [f"imported {len(self.imported)} documents from {self.source} into {self.dest} "
                   f"({self.parsed} files read, {self.reused} unchanged since the last import); "
                   f"skipped {len(self.skipped) + len(self.unsupported)}"]
        if self.include is not None:
            out.append(f"  left out {self.excluded} files not matching include {', '.join(self.include)}")
        for path, reason in self.skipped:
            out.append(f"  skipped {path}: {reason}")
        for path in self.unsupported[:UNSUPPORTED_SHOWN]:
            out.append(f"  skipped {path}: unsupported format {_suffix_label(path)}")
        rest = self.unsupported[UNSUPPORTED_SHOWN:]
        if rest:
            counts: dict[str, int] = {}
            for path in rest:
                counts[_suffix_label(path)] = counts.get(_suffix_label(path), 0) + 1
            out.append(f"  skipped {len(rest)} more files of unsupported formats ("
                       + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())) + ")")
        for path, note in self.notes:
            out.append(f"  note {path}: {note}")
        if self.boilerplate is not None:
            out.append("  " + self.boilerplate.line())
        return out


def supported_suffixes() -> list[str]:
    return sorted(FORMATS)


def import_folder(source: str | Path, dest: str | Path, on_error: str = "skip",
                  reuse_from: str | Path | None = None, include=None) -> ImportReport:
    """Import every document under `source` (matching one of the `include` glob patterns, when given) into `dest`
    (corpus.jsonl, manifest.json), reusing the documents of an earlier import (`reuse_from`, default `dest` itself)
    whose files did not change. With on_error="fail" the first unreadable document raises a DataError naming it, and
    nothing is written."""
    check_choice("dataset.on_error", on_error, ON_ERROR)
    include = include_patterns(include)
    source = Path(source).expanduser().resolve()
    dest = Path(dest).expanduser().resolve()
    if not source.is_dir():
        raise DataError(source, "folder not found", fix="pass a folder of .md, .txt, .html, .htm or .pdf files")
    _check_dest(dest)
    previous = _Previous(Path(reuse_from).expanduser().resolve() if reuse_from else dest, source)
    report = ImportReport(source=source, dest=dest, include=include)
    entries: dict[str, dict] = {}
    records: list[dict] = []
    for rel, path in scan(source, exclude=dest):
        if not included(rel, include):
            report.excluded += 1
            continue
        stat = path.stat()
        entry = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        entries[rel] = entry
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            entry["status"] = "unsupported"
            report.unsupported.append(rel)
            continue
        entry["format"] = FORMATS[suffix]
        old = previous.unchanged(rel, stat)
        raw = None
        if old is None:
            raw = path.read_bytes()
            old = previous.same_content(rel, hashlib.sha256(raw).hexdigest())
        if old is not None:
            record = previous.record(rel) if old["status"] == "imported" else None
            if old["status"] == "skipped" or record is not None:
                entry.update(sha256=old["sha256"], status=old["status"])
                if old["status"] == "imported":
                    record["metadata"]["source"]["mtime"] = _utc(stat.st_mtime_ns)
                    entry["note"] = old.get("note")
                    _imported(report, records, rel, entry, record)
                else:
                    entry["reason"] = old["reason"]
                    report_skipped(report, source, rel, old["reason"], on_error)
                report.reused += 1
                continue
        if raw is None:
            raw = path.read_bytes()
        entry["sha256"] = hashlib.sha256(raw).hexdigest()
        report.parsed += 1
        try:
            record = _record(rel, entry, raw)
        except UnreadableFile as exc:
            entry.update(status="skipped", reason=exc.reason)
            report_skipped(report, source, rel, exc.reason, on_error)
            continue
        entry["status"] = "imported"
        entry["note"] = record["metadata"]["source"].pop("note", None)
        _imported(report, records, rel, entry, record)
    if not records:
        raise DataError(source, f"no readable documents ({len(report.skipped)} unreadable, "
                                f"{len(report.unsupported)} of other formats"
                                + (f", {report.excluded} not matching include {include}" if include else "") + ")",
                        fix=f"the folder needs files ending in {', '.join(supported_suffixes())}"
                            + (" that match an include pattern" if include else "")
                            + ("; " + "; ".join(f"{p}: {r}" for p, r in report.skipped[:3]) if report.skipped else ""))
    dest.mkdir(parents=True, exist_ok=True)
    extracted = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    report.boilerplate = drop_boilerplate(records)  # across the folder: after every document is read
    _write_atomic(dest / EXTRACTED, extracted)
    _write_atomic(dest / CORPUS, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    manifest = {"importer": IMPORTER_VERSION, "libraries": library_versions(), "source": str(source),
                "include": include, "on_error": on_error, "created": _utc(time.time_ns()),
                "excluded": report.excluded, "boilerplate": report.boilerplate.summary(),
                "files": {rel: _compact(e) for rel, e in entries.items()}}
    _write_atomic(dest / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return report


def scan(source: Path, exclude: Path | None = None):
    """(relative POSIX path, path) of every file under `source`, sorted, following links once, skipping hidden
    names and the folder `exclude` (an import written inside the folder it imports)."""
    seen: set[str] = set()
    found = []
    for root, dirs, files in os.walk(source, followlinks=True):
        real = os.path.realpath(root)
        if real in seen or (exclude is not None and Path(real) == exclude):
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.is_file():
                found.append((path.relative_to(source).as_posix(), path))
    return sorted(found)


def include_patterns(include) -> list[str] | None:
    """The include setting as a list of glob patterns (a single string is one pattern); None: every file."""
    if include is None:
        return None
    patterns = [include] if isinstance(include, str) else list(include) if isinstance(include, Sequence) else None
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise ConfigError("dataset.include", f"{include!r} is not a list of glob patterns",
                          'give patterns over relative paths, e.g. dataset.include=["*.html","guide/*.md"], or '
                          "dataset.include=null for every supported file")
    return [str(p) for p in patterns]


def included(rel: str, include: list[str] | None) -> bool:
    return include is None or any(PurePosixPath(rel).match(pattern) for pattern in include)


def holds_documents(folder: Path, include=None) -> bool:
    include = include_patterns(include)
    return any(path.suffix.lower() in FORMATS and included(rel, include) for rel, path in scan(folder))


def log_report(report: ImportReport) -> None:
    # on the console (WARNING) when files were skipped or text was cut: the user should know what is not indexed
    level = logging.WARNING if report.skipped or (report.boilerplate and report.boilerplate.lines) else logging.INFO
    for line in report.lines():
        log.log(level, "%s", line)


def manifest_report(dest: Path, source: Path | None = None, include: list[str] | None = None) -> ImportReport:
    """What the import in `dest` holds and left out, from its manifest (no file is read again): reported by every
    run that reuses the import."""
    manifest = json.loads((Path(dest) / MANIFEST).read_text(encoding="utf-8"))
    known = include is not None and "excluded" in manifest  # imports made before the count was recorded: no line
    report = ImportReport(source=Path(source or manifest.get("source") or dest), dest=Path(dest),
                          include=include if known else None, excluded=manifest.get("excluded", 0))
    for rel, entry in (manifest.get("files") or {}).items():
        status = entry.get("status")
        if status == "imported":
            report.imported.append(rel)
            if entry.get("note"):
                report.notes.append((rel, entry["note"]))
        elif status == "skipped":
            report.skipped.append((rel, entry.get("reason") or "unreadable"))
        elif status == "unsupported":
            report.unsupported.append(rel)
    report.reused = len(report.imported) + len(report.skipped)
    report.cached = True
    if manifest.get("boilerplate") and "documents" in manifest["boilerplate"]:  # recorded since importer 3
        report.boilerplate = BoilerplateReport.from_summary(manifest["boilerplate"])
    return report


def is_import(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def skipped_files(folder: str | Path) -> dict[str, str]:
    """{relative path: reason} of the documents an import left out as unreadable; {} for a folder that is not an
    import of documents."""
    if not is_import(folder):
        return {}
    try:
        return dict(manifest_report(Path(folder)).skipped)
    except (OSError, ValueError, AttributeError):
        return {}


# --- one file ----------------------------------------------------------------------------------------------------
def _record(rel: str, entry: dict, raw: bytes) -> dict:
    if not raw:
        raise UnreadableFile("empty file")
    fmt = FORMATS[Path(rel).suffix.lower()]
    extracted = reader(fmt)(raw)
    if not extracted.text.strip():
        raise UnreadableFile("no text" + (" outside navigation and page furniture" if fmt == "html" else ""))
    source = {"path": rel, "format": fmt, "bytes": entry["bytes"], "mtime": _utc(entry["mtime_ns"]),
              "sha256": entry["sha256"], **extracted.details, "map": extracted.source_map}
    if extracted.note:
        source["note"] = extracted.note
    return {"_id": rel, "title": extracted.title or Path(rel).stem, "text": extracted.text,
            "metadata": {"source": source, "sections": extracted.sections, "anchors": extracted.anchors}}


def _imported(report: ImportReport, records: list[dict], rel: str, entry: dict, record: dict) -> None:
    records.append(record)
    report.imported.append(rel)
    if entry.get("note"):
        report.notes.append((rel, entry["note"]))


def report_skipped(report: ImportReport, source: Path, rel: str, reason: str, on_error: str) -> None:
    if on_error == "fail":
        raise DataError(source / rel, f"cannot import: {reason}",
                        fix="repair or remove the file, or leave it out: import with --on-error skip "
                            "(for dataset.path, dataset.on_error=skip)")
    report.skipped.append((rel, reason))


# --- the previous import -----------------------------------------------------------------------------------------
class _Previous:
    """What an earlier import recorded: reused only when made by this importer with these library versions."""

    def __init__(self, folder: Path, source: Path):
        self.folder = folder
        self.files: dict[str, dict] = {}
        self.same_source = False
        self._records: dict[str, dict] | None = None
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if manifest.get("importer") == IMPORTER_VERSION and manifest.get("libraries") == library_versions():
            self.files = manifest.get("files") or {}
            self.same_source = manifest.get("source") == str(source)

    def unchanged(self, rel: str, stat) -> dict | None:
        """The earlier entry when size and mtime say the file was not touched (as make and rsync judge)."""
        old = self.files.get(rel)
        if (self.same_source and old and old.get("sha256") and old.get("bytes") == stat.st_size
                and old.get("mtime_ns") == stat.st_mtime_ns):
            return old
        return None

    def same_content(self, rel: str, sha256: str) -> dict | None:
        old = self.files.get(rel)
        return old if old and old.get("sha256") == sha256 else None

    def record(self, rel: str) -> dict | None:
        if self._records is None:
            self._records = {}
            try:
                with open(self.folder / EXTRACTED, encoding="utf-8") as fh:
                    for line in fh:
                        record = json.loads(line)
                        self._records[record["_id"]] = record
            except (OSError, ValueError, KeyError):
                self._records = {}  # unreadable: everything is parsed again
        return self._records.get(rel)


def _check_dest(dest: Path) -> None:
    foreign = any((dest / name).exists() for name in (CORPUS, CORPUS + ".gz"))
    if foreign and not (dest / MANIFEST).exists():
        raise LabError(f"{dest} holds a dataset that is not an import of documents: import under another name")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _compact(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if v is not None}


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def _suffix_label(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return f"'{suffix}'" if suffix else "(no suffix)"
