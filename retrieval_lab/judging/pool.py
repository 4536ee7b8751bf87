"""The pool: what an experiment's configurations retrieve for your questions, to be judged once.

Each configuration comes as plain data with a `retrieve` callable (`Configuration`): the judge command
(commands/judge.py) finds an experiment's FINISHED configuration runs and rebuilds each chain from its logged
`config.yaml`, as `evaluate --config` does; this package needs nothing of the pipeline. First-stage runs are cache
entries keyed on the questions (cache.py), so a later `run`/`sweep` on the judged set, which keeps the same
questions, replays them instead of searching or encoding again.

The pool holds each unique (question, returned unit) among the top `depth` units of every configuration: a unit is
the character span of a document that a configuration returns (a chunk, a window, a section or the whole
document). Items retrieved by more configurations come first, then those ranked higher, then question order, so
the judgements that matter to most configurations are made first. `pool.json` freezes the pool with its inputs
(experiment, configurations, questions file hash, depth, corpus): judging again with the same inputs resumes it.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from retrieval_lab.chunking.units import parse_unit_id
from retrieval_lab.data.question_file import read_questions
from retrieval_lab.errors import DataError, LabError
from retrieval_lab.types import Corpus, Queries, Run

FORMAT = "retrieval-lab/pool-v1"
POOL_FILE = "pool.json"


@dataclass(frozen=True)
class Configuration:
    """A FINISHED configuration run of the experiment, as the pool uses it: how deep it retrieves (its eval.depth),
    the dataset node and cache folder its corpus is read from, and `retrieve(corpus, questions)`, its returned units
    ranked per question (the chain rebuilt from the logged config)."""

    run_id: str
    name: str
    study: str
    depth: int
    dataset: dict
    cache_dir: str | None
    retrieve: Callable[[Corpus, Queries], Run] = field(compare=False, repr=False)


@dataclass
class PoolItem:
    query_id: str
    doc: str
    start: int
    end: int
    hits: list[tuple[int, int]] = field(default_factory=list)  # (configuration index, rank from 1)

    @property
    def key(self) -> tuple[str, str, int, int]:
        return self.query_id, self.doc, self.start, self.end

    @property
    def count(self) -> int:
        return len({c for c, _ in self.hits})

    @property
    def best_rank(self) -> int:
        return min(r for _, r in self.hits)


@dataclass
class Pool:
    experiment: str
    sweep: str | None
    depth: int
    questions_file: str
    questions_sha256: str
    questions: Queries
    configurations: list[dict]  # {"run_id", "name", "study"}, in the order `hits` index them
    dataset: dict  # the dataset node of the configurations, where the corpus is read from
    corpus_fingerprint: str
    items: list[PoolItem]
    created: str = ""
    cache_dir: str | None = None  # the configurations' cache.dir: a folder of documents is imported under it

    def inputs(self) -> dict:
        """What the pool is a function of: the same inputs give the same pool, so an existing pool.json resumes."""
        return {"experiment": self.experiment, "sweep": self.sweep, "depth": self.depth,
                "questions_sha256": self.questions_sha256,
                "runs": sorted(c["run_id"] for c in self.configurations)}

    def index_of(self) -> dict[tuple[str, str, int, int], int]:
        return {item.key: i for i, item in enumerate(self.items)}

    def question_text(self) -> dict[str, str]:
        return dict(zip(self.questions.ids, self.questions.texts))

    def to_json(self) -> dict:
        return {"format": FORMAT, "created": self.created, "experiment": self.experiment, "sweep": self.sweep,
                "depth": self.depth, "questions_file": self.questions_file,
                "questions_sha256": self.questions_sha256,
                "questions": [{"id": q, "text": t} for q, t in zip(self.questions.ids, self.questions.texts)],
                "configurations": self.configurations, "dataset": self.dataset,
                "corpus_fingerprint": self.corpus_fingerprint, "cache_dir": self.cache_dir,
                "items": [{"query_id": i.query_id, "doc": i.doc, "start": i.start, "end": i.end,
                           "hits": [list(h) for h in i.hits]} for i in self.items]}

    @classmethod
    def from_json(cls, data: dict) -> "Pool":
        questions = Queries([q["id"] for q in data["questions"]], [q["text"] for q in data["questions"]])
        items = [PoolItem(i["query_id"], i["doc"], int(i["start"]), int(i["end"]),
                          [(int(c), int(r)) for c, r in i["hits"]]) for i in data["items"]]
        return cls(data["experiment"], data.get("sweep"), int(data["depth"]), data["questions_file"],
                   data["questions_sha256"], questions, data["configurations"], data["dataset"],
                   data["corpus_fingerprint"], items, data.get("created", ""), data.get("cache_dir"))


def judging_questions(path: str | Path) -> tuple[Queries, str]:
    """The questions to judge (a questions file whose evidence and docs are optional) and the file's sha256."""
    path = Path(path)
    rows = read_questions(path, require_gold=False)
    return (Queries([r.query_id for r in rows], [r.question for r in rows]),
            hashlib.sha256(path.read_bytes()).hexdigest())


def load_corpus_of(dataset: dict, cache_dir: str | None = None) -> Corpus:
    from retrieval_lab.data import dataset_folder
    from retrieval_lab.data.beir import find_corpus_file, load_corpus

    _, folder = dataset_folder(OmegaConf.create(dataset), cache_dir)
    return load_corpus(find_corpus_file(folder))


def pooled_runs(configurations: list[Configuration], questions: Queries, depth: int,
                report: Callable[[str], None] = lambda line: None) -> tuple[list[Run], dict, str | None, Corpus]:
    """Each configuration's returned units for the questions, top `depth`; the dataset node, cache folder and
    corpus they share. Configurations over different corpora cannot share a pool: an error names them."""
    for configuration in configurations:  # every config error before any work
        if configuration.depth < depth:
            raise LabError(f"--depth {depth} is deeper than configuration {configuration.name} (run "
                           f"{configuration.run_id}) retrieves (eval.depth {configuration.depth}): use --depth "
                           f"{configuration.depth} or less")
    corpora: dict[str, tuple[Corpus, dict, str | None]] = {}
    runs, fingerprints = [], {}
    for n, configuration in enumerate(configurations, 1):
        t0 = time.perf_counter()
        dataset, cache_dir = configuration.dataset, configuration.cache_dir
        where = json.dumps({k: dataset.get(k) for k in ("name", "root", "path", "include")}, sort_keys=True)
        if where not in corpora:
            corpora[where] = (load_corpus_of(dataset, cache_dir), dataset, cache_dir)
        corpus = corpora[where][0]
        fingerprints.setdefault(corpus.fingerprint, []).append(configuration.name)
        if len(fingerprints) > 1:
            names = "; ".join(f"{', '.join(v[:3])}" for v in fingerprints.values())
            raise LabError(f"the configurations search different corpora ({names}): a pool judges one corpus\n"
                           "  fix: pass --sweep SWEEP_ID to judge one sweep's configurations, or split the experiment")
        try:
            units = configuration.retrieve(corpus, questions)
        except LabError as exc:
            raise LabError(f"configuration {configuration.name} (run {configuration.run_id}): {exc}") from None
        runs.append(units.truncate(depth))
        report(f"  [{n}/{len(configurations)}] {configuration.name}  {time.perf_counter() - t0:.1f} s")
    corpus, dataset, cache_dir = next(iter(corpora.values()))
    return runs, dataset, cache_dir, corpus


def pool_items(runs: list[Run], query_ids: list[str], depth: int, existing: list[PoolItem] = (),
               first: int = 0) -> list[PoolItem]:
    """Unique (question, unit) pairs of the runs' top `depth`, most often retrieved first, then best ranked, then
    in question order. `existing` items (of configurations 0..first-1) are extended by the runs, numbered from
    `first`."""
    items: dict[tuple[str, str, int, int], PoolItem] = {
        i.key: PoolItem(i.query_id, i.doc, i.start, i.end, list(i.hits)) for i in existing}
    for c, run in enumerate(runs, first):
        for qid in query_ids:
            for rank, (uid, _) in enumerate(run.get(qid, [])[:depth], 1):
                doc, start, end = parse_unit_id(uid)
                item = items.setdefault((qid, doc, start, end), PoolItem(qid, doc, start, end))
                item.hits.append((c, rank))
    order = {q: i for i, q in enumerate(query_ids)}
    return sorted(items.values(), key=lambda i: (-i.count, i.best_rank, order[i.query_id], i.doc, i.start))


def read_pool(folder: Path) -> Pool | None:
    path = folder / POOL_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        return Pool.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(path, f"not a readable pool ({exc})",
                        fix="delete it to pool again (judgements.jsonl keeps every judgement)") from None


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` in one step: a reader, or a process killed meanwhile, sees the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def extends(existing: Pool, wanted: dict) -> bool:
    """Whether the wanted pool is the existing one with configurations added (nothing else changed)."""
    have = existing.inputs()
    return all(have[k] == wanted[k] for k in wanted if k != "runs") and set(have["runs"]) < set(wanted["runs"])


def open_pool(folder: Path, configurations: list[Configuration], questions_file: Path, depth: int,
              experiment: str, sweep: str | None = None,
              report: Callable[[str], None] = lambda line: None) -> tuple[Pool, Corpus, bool]:
    """The pool of these inputs: pool.json when it holds the same inputs (resumed: True), else pooled now and
    written there. Returns the pool, its corpus, and whether it was resumed."""
    questions, sha = judging_questions(questions_file)
    wanted = {"experiment": experiment, "sweep": sweep, "depth": depth, "questions_sha256": sha,
              "runs": sorted(c.run_id for c in configurations)}
    existing = read_pool(folder)
    if existing is not None and existing.inputs() == wanted:
        corpus = load_corpus_of(existing.dataset, existing.cache_dir)
        if corpus.fingerprint == existing.corpus_fingerprint:
            return existing, corpus, True
        report("the corpus changed since the pool was made: pooling again")
    elif existing is not None and extends(existing, wanted):
        pooled = {c["run_id"] for c in existing.configurations}
        new = [c for c in configurations if c.run_id not in pooled]
        report(f"{len(new)} configuration(s) finished since the pool was made ({', '.join(c.name for c in new)}): "
               "extending the pool with their passages; judgements made so far are kept")
        runs, _, _, corpus = pooled_runs(new, existing.questions, depth, report)
        if corpus.fingerprint == existing.corpus_fingerprint:
            before = len(existing.items)
            existing.items = pool_items(runs, existing.questions.ids, depth, existing.items,
                                        len(existing.configurations))
            existing.configurations = existing.configurations + [
                {"run_id": c.run_id, "name": c.name, "study": c.study} for c in new]
            report(f"  {len(existing.items) - before} new (question, passage) pairs")
            write_atomically(folder / POOL_FILE, json.dumps(existing.to_json(), indent=1))
            return existing, corpus, True
        report("the corpus changed since the pool was made: pooling again")
    elif existing is not None:
        changed = [k for k in wanted if existing.inputs()[k] != wanted[k]]
        report(f"the pool's inputs changed ({', '.join(changed)}): pooling again; judgements made so far are kept")
    report(f"pooling the top {depth} of {len(configurations)} configurations for {len(questions)} questions")
    runs, dataset, cache_dir, corpus = pooled_runs(configurations, questions, depth, report)
    pool = Pool(experiment, sweep, depth, str(questions_file), sha, questions,
                [{"run_id": c.run_id, "name": c.name, "study": c.study} for c in configurations], dataset,
                corpus.fingerprint, pool_items(runs, questions.ids, depth),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / POOL_FILE, json.dumps(pool.to_json(), indent=1))
    return pool, corpus, False
