"""Sweep bookkeeping shared by the Hydra callback (main process) and the jobs (same process or joblib workers).

The callback creates the tracking store, the experiment and the parent run before any job starts, then hands the
jobs their context through environment variables (inherited by joblib workers). Each job leaves a small JSON record
in `<sweep dir>/.sweep/jobs/` when it ends; progress, the parent's status and the leaderboard are read from those.

Resume: a configuration is identified by a hash of its resolved config (tracking, cache and dataset location left
out), the dataset content and the code version; a FINISHED run carrying that hash is never computed again.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval_lab.paths import checkout_root

ENV_PREFIX = "RETRIEVAL_LAB_SWEEP_"
SOURCE_REVISION_ENV = "RETRIEVAL_LAB_CODE_VERSION"  # its first name, kept: scripts and tests set it
FAULT_ENV = "RETRIEVAL_LAB_FAULT"  # fault injection for the resume tests: "<point>:<n>" SIGKILLs at that point
FAULT_ONCE_ENV = "RETRIEVAL_LAB_FAULT_ONCE"  # a file: only the process that creates it is killed (one per sweep)
HOLD_ENV = "RETRIEVAL_LAB_HOLD"  # "<point>:<folder>": wait at that point until <folder>/release exists
HOLD_TIMEOUT_S = 600.0

# Keys that do not change a configuration's results: left out of the resume hash.
NOT_RESULTS = ("hydra", "tracking", "cache", "sweep")
NOT_RESULTS_DATASET = ("root", "path", "url", "md5")


@dataclass
class SweepContext:
    sweep_id: str
    parent_run_id: str
    experiment_id: str
    experiment: str
    study: str
    state_dir: str
    total: int
    started: float
    source_revision: str  # the lab's code that ran (source_revision()), recorded as the runs' code_version tag
    keys: str = ""  # the swept config keys, comma-separated: they name the child runs
    tracking_uri: str = ""  # the parent's store: children log there, whatever a worker's cwd or config would resolve

    def to_env(self) -> dict[str, str]:
        return {f"{ENV_PREFIX}{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls) -> "SweepContext | None":
        if f"{ENV_PREFIX}PARENT_RUN_ID" not in os.environ:
            return None
        values: dict[str, Any] = {}
        for name, typ in cls.__annotations__.items():
            raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}", "")
            values[name] = {"int": int, "float": float}.get(typ, str)(raw) if raw else (0 if typ in ("int", "float") else "")
        return cls(**values)


@dataclass
class JobRecord:
    num: int
    status: str  # finished | skipped | failed
    run_id: str | None
    run_name: str
    config_hash: str
    overrides: list[str] = field(default_factory=list)
    metric: float | None = None
    seconds: float = 0.0
    error: str | None = None
    ended: float = 0.0  # when the job wrote this record (epoch seconds): the ETA's clock


def jobs_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / "jobs"


def write_record(state_dir: str | Path, record: JobRecord) -> None:
    folder = jobs_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record.ended = record.ended or time.time()
    tmp = folder / f".{record.num}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, folder / f"{record.num}.json")


def read_records(state_dir: str | Path) -> list[JobRecord]:
    out = []
    for path in sorted(jobs_dir(state_dir).glob("*.json"), key=lambda p: int(p.stem)):
        try:
            out.append(JobRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return out


ETA_AFTER = 3  # computed configurations before an ETA is shown: the first one also pays the warm-up


def progress_line(ctx: SweepContext, records: list[JobRecord]) -> str:
    """How far the sweep is: '3/5, 0:11 elapsed, ETA 0:07'.

    The first computed configuration pays for what the others reuse (loading the data, models and imports, encoding
    the corpus into the cache): counted in, it made a 1:25 sweep announce 11:06. The ETA is the pace measured after
    it (wall clock between the ends of the first and the latest computed configurations, so parallel jobs count as
    they run), and shows as '?' until ETA_AFTER configurations were computed. Resumed ones cost nothing and are
    left out of the pace."""
    done = len(records)
    elapsed = time.time() - ctx.started
    remaining = max(ctx.total - done, 0)
    ends = sorted(r.ended for r in records if r.status != "skipped" and r.ended)
    if remaining == 0:
        eta = "0:00"
    elif len(ends) >= ETA_AFTER:
        eta = _clock((ends[-1] - ends[0]) / (len(ends) - 1) * remaining)
    else:
        eta = "?"
    return f"{done}/{ctx.total or '?'}, {_clock(elapsed)} elapsed, ETA {eta}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


_SOURCE_REVISION: str | None = None


def source_revision() -> str:
    """The revision of the lab's code: git commit of the checkout (+ a hash of uncommitted changes to code and
    configs), else the package version. Part of a configuration's resume hash. (Not a cache stage's version:
    cache.STAGE_VERSIONS.)"""
    global _SOURCE_REVISION
    if os.environ.get(SOURCE_REVISION_ENV):
        return os.environ[SOURCE_REVISION_ENV]
    if _SOURCE_REVISION is not None:
        return _SOURCE_REVISION
    home = checkout_root()
    version = None
    try:
        if home is None:  # an installed package: a git repository around site-packages would not be its code
            raise FileNotFoundError("no checkout")

        def git(*args: str) -> bytes:
            return subprocess.run(["git", "-C", str(home), *args], capture_output=True, check=True,
                                  timeout=20).stdout

        commit = git("rev-parse", "HEAD").decode().strip()
        paths = ["retrieval_lab", "conf", "experiments"]
        diff = git("diff", "HEAD", "--", *paths)
        untracked = git("ls-files", "--others", "--exclude-standard", "-z", "--", *paths).split(b"\0")
        h = hashlib.sha256(diff)
        for name in sorted(u for u in untracked if u and not u.endswith(b".pyc")):
            h.update(name)
            try:
                h.update((home / name.decode()).read_bytes())
            except OSError:
                pass
        version = commit if not diff and not any(untracked) else f"{commit}+dirty.{h.hexdigest()[:12]}"
    except (OSError, subprocess.SubprocessError):
        pass
    if version is None:
        from retrieval_lab import __version__

        version = f"retrieval-lab=={__version__}"  # the running package's, not whichever dist-info is found first
    _SOURCE_REVISION = version
    return version


def results_config(resolved: dict) -> dict:
    """The part of a resolved config that decides the results (what the resume hash covers)."""
    data = {k: v for k, v in resolved.items() if k not in NOT_RESULTS}
    if isinstance(data.get("dataset"), dict):
        data["dataset"] = {k: v for k, v in data["dataset"].items() if k not in NOT_RESULTS_DATASET}
    return data


def config_hash(resolved: dict, dataset_fingerprint: str, revision: str) -> str:
    blob = json.dumps({"config": results_config(resolved), "dataset": dataset_fingerprint, "code": revision},
                      sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def params_hash(resolved: dict, dataset_fingerprint: str) -> str:
    """The configuration and dataset without the source revision: the same setting across revisions of the code."""
    return config_hash(resolved, dataset_fingerprint, "")


def run_name_from_overrides(overrides: list[str], swept: list[str] | None = None) -> str:
    """A short readable name from the swept keys: `retriever.k1=1.2 retriever.b=0.75` -> `k1=1.2 b=0.75`."""
    parts = []
    for item in overrides:
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+~")
        if key.startswith("hydra") or key in ("experiments", "experiment") or key.startswith("tracking"):
            continue
        if swept and key not in swept:
            continue
        parts.append(f"{key.split('.')[-1] if '.' in key else key}={value}")
    return " ".join(parts) or "default"


PATH_VALUE_KEYS = ("dataset.path", "dataset.questions")  # shown by their file or folder name
NOT_A_CHANGE = ("cache.", "dataset.root", "hydra", "tracking")  # where things live or how deep: not what was tried


def run_name_of_run(overrides: list[str]) -> str:
    """A plain `run`'s name from what its command line changed (MLflow would pick `aged-hawk-111`):
    `dataset=scifact retriever=bm25 retriever.k1=1.2` -> `retriever=bm25 k1=1.2`. The experiment already names the
    dataset, so a dataset choice is left out; a questions file or folder shows by its name; no change: `default`."""
    kept = []
    for item in overrides:
        key, sep, value = item.partition("=")
        bare = key.lstrip("+~")
        if not sep or bare == "dataset" or bare.startswith(NOT_A_CHANGE) or bare in ("experiments", "experiment"):
            continue
        if bare in PATH_VALUE_KEYS:
            value = Path(value.rstrip("/")).name or value
        kept.append(f"{bare}={value}")
    name = run_name_from_overrides(kept)
    return name if len(name) <= RUN_NAME_MAX else name[:RUN_NAME_MAX - 3] + "..."


RUN_NAME_MAX = 250  # MLflow keeps run names up to 250 characters


def maybe_fault(point: str, counter: dict[str, int] = {}) -> None:  # noqa: B006 - per-process counter
    """Test hook: `RETRIEVAL_LAB_FAULT=child_running:2` SIGKILLs this process the 2nd time it reaches that point."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    counter[point] = counter.get(point, 0) + 1
    if counter[point] != int(nth or 1):
        return
    once = os.environ.get(FAULT_ONCE_ENV)
    if once:  # under a launcher with several workers (or retries), one kill for the whole sweep
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def maybe_hold(point: str) -> None:
    """Test hook: `RETRIEVAL_LAB_HOLD=child_running:/some/folder` writes <folder>/held-<pid> at that point and waits
    until <folder>/release exists (a test restarts the tracking server while jobs are at a known place)."""
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    name, _, folder = spec.partition(":")
    if name != point or not folder:
        return
    Path(folder, f"held-{os.getpid()}").touch()
    deadline = time.time() + HOLD_TIMEOUT_S
    while not Path(folder, "release").exists() and time.time() < deadline:
        time.sleep(0.1)
