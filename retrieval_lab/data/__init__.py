"""Datasets: BEIR folders, zips or URLs, resolved from the `dataset` config group.

`load_dataset` is the one loader: every command, the sweep and the benchmarks call it, with a `dataset` config node
or a BEIR folder. It keeps the last few datasets it returned, keyed on what they were read from (the folder's files
and the questions file, by path, size and modification time, plus split, name and options), so a sweep of N
configurations reads its dataset once per process and a changed file is read again.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from retrieval_lab.cache import default_cache_dir
from retrieval_lab.data.beir import Dataset, available_splits, read_dataset
from retrieval_lab.data.folder import holds_documents, is_import, supported_suffixes
from retrieval_lab.data.import_cache import import_into_cache
from retrieval_lab.data.pull import pull, unpack_zip
from retrieval_lab.errors import ConfigError, DataError

__all__ = ["Dataset", "load_dataset", "data_root", "dataset_name", "available_splits", "pull"]

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


MEMO_SIZE = 4  # datasets kept per process: a sweep over a few datasets in any order reads each once
_MEMO: OrderedDict[tuple, Dataset] = OrderedDict()


def load_dataset(source, split: str | None = None, *, name: str | None = None,
                 ignore_identical_ids: bool | None = None, questions: str | Path | None = None,
                 cache_root: str | Path | None = None) -> Dataset:
    """The dataset of `source`, read once per content.

    `source` is a `dataset` config node (name or path, split, questions, ignore_identical_ids; a zip, URL or folder
    of documents is unpacked or imported under `cache_root`, the run's `cache.dir`, else the default cache) or a
    BEIR folder, read with `split` (default test), `name` (default: the folder's), `ignore_identical_ids` and
    `questions` (a questions file whose queries, qrels and span gold replace the folder's). A dataset read before
    from the same files (path, size, modification time), split, name and options is returned again, not re-read."""
    if isinstance(source, Mapping):  # a config node (DictConfig is a Mapping)
        given = {"split": split, "name": name, "ignore_identical_ids": ignore_identical_ids, "questions": questions}
        if any(v is not None for v in given.values()):
            raise TypeError(f"load_dataset: a config node carries its own settings; got "
                            f"{', '.join(k for k, v in given.items() if v is not None)} beside it")
        return _load_node(source, cache_root)
    return _load_folder(Path(source), split or "test", name, bool(ignore_identical_ids), questions)


def forget_datasets() -> None:
    """Drop every dataset kept by load_dataset (the next call reads its files)."""
    _MEMO.clear()


def _load_node(cfg, cache_root) -> Dataset:
    questions = questions_path(cfg)
    name, folder = dataset_folder(cfg, cache_root)
    if questions is None and is_import(folder):  # name the user's folder, not the import in the cache
        raise DataError(Path(str(cfg.get("path"))).expanduser(), "a folder of documents has no questions to "
                        "evaluate (its import holds the documents only)",
                        fix="set dataset.questions=FILE, a .jsonl or .csv of questions with evidence quotes or docs "
                            "(README: own documents); write one with `retrieval-lab judge` or `retrieval-lab data "
                            "synth`")
    return _load_folder(folder, str(cfg.split), name, bool(cfg.get("ignore_identical_ids", False)), questions)


def _load_folder(folder: Path, split: str, name: str | None, ignore_identical_ids: bool,
                 questions: str | Path | None) -> Dataset:
    if not folder.is_dir():  # the reader says what is missing and how to fix it
        return read_dataset(folder, split, name, ignore_identical_ids, questions)
    name = name or folder.name
    key = (str(folder.resolve()), _files_stamp(folder), split, name, ignore_identical_ids,
           None if questions is None else (str(Path(questions).resolve()), _file_stamp(Path(questions))))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    dataset = read_dataset(folder, split, name, ignore_identical_ids, questions)
    _MEMO[key] = dataset
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return dataset


def _file_stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:  # missing: the reader reports it
        return (str(path), None, None)
    return (str(path), st.st_size, st.st_mtime_ns)


def _files_stamp(folder: Path) -> tuple:
    """Every file under the folder by relative path, size and modification time: any change reads it again."""
    return tuple(sorted((str(p.relative_to(folder)), *_file_stamp(p)[1:]) for p in folder.rglob("*") if p.is_file()))
