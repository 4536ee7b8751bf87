"""Datasets: BEIR folders, zips or URLs, resolved from the `dataset` config group."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from retrieval_lab.cache import default_cache_dir
from retrieval_lab.data.beir import Dataset, available_splits, load_dataset
from retrieval_lab.data.folder import holds_documents, is_import, supported_suffixes
from retrieval_lab.data.import_cache import import_into_cache
from retrieval_lab.data.pull import pull, unpack_zip
from retrieval_lab.errors import ConfigError, DataError

__all__ = ["Dataset", "load_dataset", "dataset_from_config", "data_root", "dataset_name", "available_splits", "pull"]

DATA_ENV = "RETRIEVAL_LAB_DATA"


def data_root(configured: str | None = None) -> Path:
    """`dataset.root` if set, else $RETRIEVAL_LAB_DATA, else ./data."""
    return Path(configured or os.environ.get(DATA_ENV) or "data").expanduser()


def dataset_name(cfg) -> str:
    """`dataset.name`, or with `dataset.path` the name of what it points at (a folder's name, a zip's or URL's stem),
    unless the dataset option names its own path: `own_path` is that path (conf/dataset/r_manuals.yaml), so a study
    given another folder (`sweep own-docs dataset.path=my_docs`) is named for that folder, not for the option's data;
    `own_path: true` names any path."""
    path = cfg.get("path")
    own = cfg.get("own_path")
    if not path or own is True or (own and _same_path(str(own), str(path))):
        return str(cfg.name)
    path = str(path).split("?")[0].rstrip("/")
    return Path(path).stem if path.endswith(".zip") or "://" in path else Path(path).expanduser().name


def _same_path(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def dataset_folder(cfg, cache_root: str | Path | None = None) -> tuple[str, Path]:
    """Where the dataset's BEIR folder is: `dataset.path` (folder, .zip or URL) or `<root>/<name>`; a zip is
    unpacked once, a named import (`<root>/<name>` written by `data import`) imported again when its folder
    changed, and a folder of documents (.md, .txt, .html, .pdf; no corpus.jsonl) imported once per content
    (data/import_cache.py: only the files matching `dataset.include` when set; unreadable files skipped, or failing
    with dataset.on_error=fail), under the cache root (`cache.dir`, else the default cache)."""
    path = cfg.get("path")
    if not path:
        folder = data_root(cfg.get("root")) / cfg.name
        if (folder / "manifest.json").exists():  # a named import (`data import DIR --name NAME`): follow DIR
            from retrieval_lab.data.named import refresh_import

            refresh_import(folder)
        return cfg.name, folder
    path = str(path)
    name = dataset_name(cfg)
    if path.startswith(("http://", "https://")):
        folder = data_root(cfg.get("root")) / name
        if not folder.exists():
            pull(name, path, folder.parent, cfg.get("md5"))
        return name, folder
    local = Path(path).expanduser()
    if not local.exists():  # moved or renamed: dataset.path wins over dataset.root, so only it can point at the data
        raise DataError(local, "dataset.path: not found (moved, renamed, or on another machine)",
                        fix="point dataset.path at where it is now, as an override after the command: "
                            "`retrieval-lab run dataset.path=NEW_PLACE ...`, `retrieval-lab evaluate --config "
                            "FILE dataset.path=NEW_PLACE` or `retrieval-lab search --config FILE QUERY "
                            "dataset.path=NEW_PLACE`")
    if local.suffix == ".zip":
        key = hashlib.sha256(local.read_bytes()).hexdigest()[:16]
        folder = Path(cache_root or default_cache_dir()).expanduser() / "datasets" / f"{local.stem}-{key}"
        if not folder.exists():
            unpack_zip(local, folder)
        return name, folder
    if local.is_dir() and not any((local / name).exists() for name in ("corpus.jsonl", "corpus.jsonl.gz")):
        include = cfg.get("include")
        if not holds_documents(local, include):
            raise DataError(local, "neither a BEIR folder (no corpus.jsonl) nor a folder of documents (no "
                            f"{', '.join(supported_suffixes())} files"
                            + (f" matching dataset.include={list(include)}" if include else "") + ")",
                            fix="point dataset.path at a BEIR folder, a .zip, or a folder of documents"
                                + (", or widen dataset.include" if include else ""))
        cache = Path(cache_root or default_cache_dir()).expanduser()
        return name, import_into_cache(local, cache, cfg.get("on_error") or "skip", include)
    return name, local


def questions_path(cfg) -> Path | None:
    """`dataset.questions` as a file: a relative path is looked up from where you run, then from the project home
    (the folder holding conf/ and experiments/; retrieval_lab.paths), so the questions a dataset option ships
    under experiments/ are found from any working directory."""
    questions = cfg.get("questions")
    if not questions:
        return None
    path = Path(str(questions)).expanduser()
    if path.is_file():
        return path
    if not path.is_absolute():
        from retrieval_lab.paths import project_home

        shipped = project_home() / path
        if shipped.is_file():
            return shipped
    raise ConfigError("dataset.questions", f"{path} is not a file",
                      "give the path of a .jsonl or .csv questions file (relative to where you run or to the "
                      "project home), or dataset.questions=null for the dataset's own queries and qrels")


def dataset_from_config(cfg, cache_root: str | Path | None = None) -> Dataset:
    """The dataset a `dataset` config node names; with `dataset.questions` its queries, qrels and span gold come
    from that questions file (see questions_path), for any corpus."""
    questions = questions_path(cfg)
    name, folder = dataset_folder(cfg, cache_root)
    if questions is None and is_import(folder):  # name the user's folder, not the import in the cache
        raise DataError(Path(str(cfg.get("path"))).expanduser(), "a folder of documents has no questions to "
                        "evaluate (its import holds the documents only)",
                        fix="set dataset.questions=FILE, a .jsonl or .csv of questions with evidence quotes or docs "
                            "(README: own documents); write one with `retrieval-lab judge` or `retrieval-lab data "
                            "synth`")
    return load_dataset(folder, split=cfg.split, name=name,
                        ignore_identical_ids=bool(cfg.get("ignore_identical_ids", False)),
                        questions=questions or None)
