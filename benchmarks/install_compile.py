"""How the Makefile installs: pip compiling every file as it installs, against `pip install --no-compile` followed by
`compileall -j 0` on every core without the packages' test folders (the Makefile's PIP and COMPILE). Each way
installs the same requirements into a new virtualenv, one after the other in one run; the two orders alternate over
--rounds so that a change in the machine's load falls on both.

    .venv/bin/python benchmarks/install_compile.py                       # torch alone
    .venv/bin/python benchmarks/install_compile.py -- -r requirements.lock   # what follows -- goes to pip

Prints a Markdown table (seconds per way and round, the ratio, load averages); nothing is kept.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPILE = ["-m", "compileall", "-q", "-j", "0", "-x", "/tests?/"]  # as in the Makefile


def install(venv: Path, requirements: list[str], compile_after: bool) -> float:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    t0 = time.perf_counter()
    pip = [python, "-m", "pip", "install", "--quiet", *(["--no-compile"] if compile_after else [])]
    subprocess.run([*pip, *requirements], check=True, stderr=subprocess.DEVNULL)
    if compile_after:  # exit 1 on files for newer Pythons, as the Makefile tolerates
        subprocess.run([python, *COMPILE, str(venv / "lib")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("requirements", nargs="*", default=["torch==2.13.0"])
    args = parser.parse_args(argv)
    print("| round | pip compiling (s) | --no-compile + compileall -j 0 (s) | ratio | load avg after |")
    print("|---:|---:|---:|---:|---|")
    for r in range(args.rounds):
        times = {}
        for compile_after in ([False, True] if r % 2 == 0 else [True, False]):
            folder = Path(tempfile.mkdtemp(prefix="install-compile-"))
            try:
                times[compile_after] = install(folder / "venv", args.requirements, compile_after)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"| {r + 1} | {times[False]:.1f} | {times[True]:.1f} | {times[False] / times[True]:.2f}x | {load} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
