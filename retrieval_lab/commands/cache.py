"""`retrieval-lab cache ls|du|verify|prune`: the content-addressed cache, listed, sized, checked and pruned."""
from __future__ import annotations

from retrieval_lab.errors import LabError


def add_cache_parser(sub) -> None:
    cache = sub.add_parser("cache", help="list, size, verify or prune the content-addressed cache").add_subparsers(
        dest="cache_command", required=True)
    for name, func, text in (("ls", cmd_cache_ls, "entries with stage, key, size, creation and last use"),
                             ("du", cmd_cache_du, "disk use per stage"),
                             ("verify", cmd_cache_verify, "full sha256 check of every entry; exit code 1 when any "
                              "is corrupt (a cache hit checks only sizes, file edges and .npy headers)"),
                             ("prune", cmd_cache_prune, "delete entries (of a stage, unused for N days, or all)")):
        p = cache.add_parser(name, help=text)
        p.add_argument("--dir", help="cache folder (default: $RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab)")
        p.add_argument("--stage", help="only this stage (embeddings, indexes, onnx_models, step_runs, ...)")
        if name == "prune":
            p.add_argument("--unused-days", type=float, help="only entries not used for this many days")
            p.add_argument("--all", action="store_true", help="every entry (of --stage when given)")
            p.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
        if name == "verify":
            p.add_argument("--delete", action="store_true", help="delete the corrupt entries")
        p.set_defaults(func=func)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _cache(args):
    from retrieval_lab.cache import STAGE_VERSIONS, Cache

    cache = Cache(args.dir)
    stage = getattr(args, "stage", None)
    if stage is not None and stage not in STAGE_VERSIONS and not (cache.root / stage).is_dir():
        raise LabError(f"--stage {stage}: no such cache stage (known: {', '.join(sorted(STAGE_VERSIONS))})")
    return cache


def cmd_cache_ls(args) -> int:
    import time as _time

    cache = _cache(args)
    entries = cache.entries(args.stage)
    print(f"cache at {cache.root}: {len(entries)} entries, {_human(sum(e.bytes for e in entries))}")
    for e in sorted(entries, key=lambda e: (e.stage, -e.last_used)):
        created = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(e.created))
        used = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(e.last_used))
        print(f"  {e.stage:<18} {e.key[:16]}  {_human(e.bytes):>9}  created {created}  used {used}")
    return 0


def cmd_cache_du(args) -> int:
    cache = _cache(args)
    totals: dict[str, list] = {}
    for e in cache.entries(args.stage):
        totals.setdefault(e.stage, [0, 0])
        totals[e.stage][0] += 1
        totals[e.stage][1] += e.bytes
    print(f"cache at {cache.root}")
    for stage, (count, size) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {stage:<18} {count:>6} entries  {_human(size):>9}")
    print(f"  {'total':<18} {sum(c for c, _ in totals.values()):>6} entries  "
          f"{_human(sum(s for _, s in totals.values())):>9}")
    return 0


def cmd_cache_prune(args) -> int:
    if args.stage is None and args.unused_days is None and not args.all:
        raise LabError("cache prune needs --stage STAGE, --unused-days N or --all (nothing was deleted)")
    cache = _cache(args)
    if args.dry_run:
        import time as _time

        cutoff = _time.time() - args.unused_days * 86400 if args.unused_days is not None else None
        doomed = [e for e in cache.entries(args.stage) if cutoff is None or e.last_used < cutoff]
        print(f"would delete {len(doomed)} entries, {_human(sum(e.bytes for e in doomed))} from {cache.root}")
        return 0
    removed = cache.prune(args.stage, args.unused_days)
    print(f"deleted {len(removed)} entries, {_human(sum(e.bytes for e in removed))} from {cache.root}")
    return 0


def cmd_cache_verify(args) -> int:
    cache = _cache(args)
    counts = {"entries": 0, "bytes": 0}

    def report(info, problem):
        counts["entries"] += 1
        counts["bytes"] += info.bytes
        if problem is not None:
            print(f"  corrupt  {info.stage:<18} {info.key[:16]}  {problem}", flush=True)

    damaged = cache.verify(args.stage, delete=args.delete, on_entry=report)
    print(f"verified {counts['entries']} entries ({_human(counts['bytes'])}) in {cache.root}: "
          f"{len(damaged)} corrupt")
    if damaged and args.delete:
        print(f"deleted {len(damaged)} corrupt entries (they are rebuilt when next needed)")
    elif damaged:
        print("run again with --delete to remove them (they are rebuilt when next needed)")
    return 1 if damaged else 0
