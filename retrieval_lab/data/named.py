"""Named imports: `data import DIR --name NAME` makes `dataset=NAME` an option, and the import follows its folder.

The import is written to `<data root>/NAME` (corpus.jsonl, manifest.json) and a dataset option
`<cache>/conf/dataset/NAME.yaml` is registered beside the options `data synth` writes (paths.extra_config_roots puts
that folder on Hydra's search path), holding the data root, the include patterns and the questions file given to the
import. When a run loads `<root>/NAME`, `refresh_import` compares the source folder with the manifest (paths, sizes,
mtimes) and imports it again when a file was added, removed or changed (the unchanged documents are reused), or when
the importer's version or its parsing libraries changed (everything is read again, as for `dataset.path`).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from retrieval_lab.data.folder import (CORPUS, FORMATS, IMPORTER_VERSION, MANIFEST, ImportReport, import_folder,
                                       include_patterns, included, scan)
from retrieval_lab.data.formats import library_versions
from retrieval_lab.errors import DataError, LabError

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SPLIT = "test"


@dataclass
class NamedImport:
    report: ImportReport
    option: Path  # the dataset option written for `dataset=NAME`

    def lines(self) -> list[str]:
        name = self.report.dest.name
        return [*self.report.lines(), f"  use it: retrieval-lab run dataset={name}   (option {self.option}; "
                                      f"`retrieval-lab data list` shows it; its folder is imported again when it "
                                      f"changes)"]


def check_name(name: str) -> None:
    from retrieval_lab.paths import conf_dir

    if not NAME.match(name):
        raise LabError(f"--name {name!r}: not a dataset name\n  fix: use letters, digits, '_', '-' and '.'")
    if (conf_dir() / "dataset" / f"{name}.yaml").exists():
        raise LabError(f"--name {name}: conf/dataset/{name}.yaml already names a shipped dataset, which "
                       f"`dataset={name}` would keep choosing\n  fix: import under another name")


def import_named(source: str | Path, name: str, root: Path, conf: Path, on_error: str = "skip", include=None,
                 questions: str | Path | None = None) -> NamedImport:
    """Import `source` into `<root>/<name>` and register the option `<conf>/dataset/<name>.yaml`."""
    check_name(name)
    questions_file = None
    if questions is not None:
        questions_file = Path(questions).expanduser().resolve()
        if not questions_file.is_file():
            raise DataError(questions_file, "no such questions file",
                            fix="give a .jsonl or .csv of questions (see README: your own documents), or leave "
                                "--questions out and add them later: dataset.questions=FILE")
    include = include_patterns(include)
    report = import_folder(source, root / name, on_error=on_error, include=include)
    option = register_option(name, root, conf, include, on_error, questions_file, report.source)
    return NamedImport(report, option)


def register_option(name: str, root: Path, conf: Path, include: list[str] | None, on_error: str,
                    questions: Path | None, source: Path) -> Path:
    option = conf / "dataset" / f"{name}.yaml"
    option.parent.mkdir(parents=True, exist_ok=True)
    node = {"name": name, "root": str(Path(root).expanduser().resolve()), "path": None, "split": SPLIT,
            "questions": str(questions) if questions else None, "include": include, "on_error": on_error,
            "ignore_identical_ids": False, "url": None, "md5": None}
    header = (f"# Written by `retrieval-lab data import {source} --name {name}`: the documents imported into "
              f"{node['root']}/{name}, imported again when the folder changes.\n")
    option.write_text(header + yaml.safe_dump(node, sort_keys=False), encoding="utf-8")
    return option


def import_manifest(folder: Path) -> dict | None:
    """The manifest of a folder written by the document importer, else None (a BEIR folder)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "files" in manifest else None


def changed_files(manifest: dict) -> list[str]:
    """Relative paths of the documents in the manifest's source folder that were added, removed or changed (size or
    mtime) since it was written; files of other formats and ones outside the include patterns do not count."""
    source = Path(manifest["source"])
    include = manifest.get("include")
    recorded = {rel: e for rel, e in manifest["files"].items() if e.get("status") != "unsupported"}
    seen, changed = set(), []
    for rel, path in scan(source):
        if path.suffix.lower() not in FORMATS or not included(rel, include):
            continue
        seen.add(rel)
        old = recorded.get(rel)
        stat = path.stat()
        if old is None or old.get("bytes") != stat.st_size or old.get("mtime_ns") != stat.st_mtime_ns:
            changed.append(rel)
    return changed + sorted(set(recorded) - seen)


def refresh_import(folder: Path) -> ImportReport | None:
    """Import `folder`'s source again when it changed since the import (None when nothing changed, or the folder is
    no import). A source folder that is gone leaves the import as it is, with a warning."""
    manifest = import_manifest(folder)
    if manifest is None or not manifest.get("source") or not (folder / CORPUS).exists():
        return None
    source = Path(manifest["source"])
    if not source.is_dir():
        log.warning("%s: its source folder %s is gone; using the documents imported on %s", folder, source,
                    manifest.get("created"))
        return None
    if "include" not in manifest:  # imported by a version that did not record its include patterns
        log.warning("%s was imported by an earlier version of retrieval-lab, which did not record what it included: "
                    "it is used as it is; import it again (`retrieval-lab data import %s --name %s ...`) for it to "
                    "follow its folder", folder, source, folder.name)
        return None
    changed = changed_files(manifest)
    stale = manifest.get("importer") != IMPORTER_VERSION or manifest.get("libraries") != library_versions()
    if not changed and not stale:
        return None
    report = import_folder(source, folder, on_error=manifest.get("on_error") or "skip",
                           include=manifest.get("include"))
    why = (f"{len(changed)} files added, removed or changed, e.g. {changed[0]}" if changed
           else "the importer or its parsing libraries changed")
    log.warning("%s changed since it was imported (%s): imported again into %s (%d documents, %d read)", source, why,
                folder, len(report.imported), report.parsed)
    return report


def dataset_options() -> dict[str, dict]:
    """Every `dataset=NAME` option a run can choose, by name, as its YAML says (later roots shadowed by earlier
    ones, as on Hydra's search path): conf/dataset, the personal config folder's and `<cache>/conf/dataset`."""
    from retrieval_lab.paths import conf_dir, extra_config_roots

    options: dict[str, dict] = {}
    for root in [conf_dir(), *extra_config_roots()]:
        for path in sorted((root / "dataset").glob("*.yaml")):
            try:
                node = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(node, dict):
                options.setdefault(path.stem, {**node, "_file": str(path)})
    return options
