"""Import speed per document format: files/s, MB/s and peak memory of `retrieval_lab.data.folder.import_folder`.

For each folder given and each format in it, the files of that format (linked into a temporary folder) are imported
in a fresh process, `--reps` times, each into an empty destination; then once more into the same destination, when
nothing changed (the re-import reads no file and parses nothing). Times are medians, with the OS page cache warm
after the first repetition. Peak memory is the child process's peak resident set (ru_maxrss), and its growth over
the same process just before the import (Python, the lab and the parsing libraries loaded).

The default folder is the R manuals as Debian installs them (`make docs-data`: packages r-doc-html and r-doc-pdf),
one documentation set in two formats. Other real sets on Debian: `vim-runtime` (Vim's help, plain text, in
/usr/share/vim/vim*/doc) and Node.js's API docs (Markdown and HTML, /usr/share/doc/nodejs/api).

    nice -n 10 .venv/bin/python benchmarks/import_speed.py [FOLDER ...] [--reps 3] \
        [--out benchmarks/results/import_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_FOLDER = "/usr/share/R/doc/manual"  # Debian's r-doc-html and r-doc-pdf


def child(view: str, dest: str) -> None:
    """One timed import in this process; prints a JSON line."""
    from retrieval_lab.data.folder import import_folder
    from retrieval_lab.data.formats import FORMATS, reader

    for fmt in set(FORMATS.values()):
        reader(fmt)  # import the parsing libraries before the clock starts
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = import_folder(view, dest)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    again = import_folder(view, dest)
    reimport_seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "reimport_seconds": reimport_seconds, "reimport_parsed": again.parsed,
                      "peak_mb": peak_kb / 1024, "baseline_mb": baseline_kb / 1024,
                      "imported": len(report.imported), "skipped": report.skipped,
                      "chars": sum(len(json.loads(line)["text"])
                                   for line in open(Path(dest) / "corpus.jsonl", encoding="utf-8"))}))


def files_by_format(folder: Path) -> dict[str, list[Path]]:
    from retrieval_lab.data.folder import scan
    from retrieval_lab.data.formats import FORMATS

    groups: dict[str, list[Path]] = {}
    for _, path in scan(folder):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt:
            groups.setdefault(fmt, []).append(path)
    return groups


def measure(folder: Path, fmt: str, files: list[Path], reps: int, work: Path) -> dict:
    view = work / f"{folder.name}-{fmt}"
    view.mkdir(parents=True)
    for path in files:
        link = view / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    runs = []
    for rep in range(reps):
        dest = work / f"out-{folder.name}-{fmt}-{rep}"
        proc = subprocess.run([sys.executable, __file__, "--child", str(view), str(dest)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"import of {fmt} files from {folder} failed:\n{proc.stderr}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    seconds = statistics.median(r["seconds"] for r in runs)
    return {"folder": str(folder), "format": fmt, "files": len(files), "megabytes": round(megabytes, 3),
            "imported": runs[0]["imported"], "skipped": runs[0]["skipped"], "chars": runs[0]["chars"],
            "seconds": round(seconds, 3), "seconds_all": [round(r["seconds"], 3) for r in runs],
            "files_per_s": round(len(files) / seconds, 2), "mb_per_s": round(megabytes / seconds, 3),
            "peak_mb": round(max(r["peak_mb"] for r in runs), 1),
            "peak_growth_mb": round(max(r["peak_mb"] - r["baseline_mb"] for r in runs), 1),
            "reimport_seconds": round(statistics.median(r["reimport_seconds"] for r in runs), 3),
            "reimport_parsed": max(r["reimport_parsed"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", default=[DEFAULT_FOLDER])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "import_speed.json"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    folders = [Path(f) for f in args.folders]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise SystemExit(f"not found: {', '.join(missing)} (the R manuals: `make docs-data`)")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="import-speed-") as tmp:
        for folder in folders:
            for fmt, files in sorted(files_by_format(folder).items()):
                row = measure(folder, fmt, files, args.reps, Path(tmp))
                rows.append(row)
                print(f"{folder} {fmt}: {row['files']} files, {row['megabytes']:.1f} MB in {row['seconds']:.2f} s "
                      f"= {row['files_per_s']:.1f} files/s, {row['mb_per_s']:.2f} MB/s; peak {row['peak_mb']:.0f} MB "
                      f"(+{row['peak_growth_mb']:.0f}); unchanged re-import {row['reimport_seconds']:.3f} s",
                      flush=True)
    result = {"load_before": load_before, "load_after": os.getloadavg(), "cpus": os.cpu_count(),
              "python": sys.version.split()[0], "reps": args.reps, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print()
    print("| folder | format | files | MB | imported | seconds | files/s | MB/s | peak RSS MB (growth) | "
          "unchanged re-import s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['folder']} | {r['format']} | {r['files']} | {r['megabytes']:.1f} | {r['imported']} | "
              f"{r['seconds']:.2f} | {r['files_per_s']:.1f} | {r['mb_per_s']:.2f} | {r['peak_mb']:.0f} "
              f"(+{r['peak_growth_mb']:.0f}) | {r['reimport_seconds']:.3f} |")
    print(f"\nload average before {load_before}, after {result['load_after']}; results in {args.out}")


if __name__ == "__main__":
    main()
