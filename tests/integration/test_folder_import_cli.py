"""A run on a document folder without questions, through the CLI in a subprocess: it says to pass them
(tests/unit/test_folder_import.py: the import itself, in process)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.unit.test_folder_import import REPO, make_docs


def test_run_on_a_folder_without_questions_says_to_pass_them(tmp_path):
    src = make_docs(tmp_path / "docs")
    env = {**os.environ, "RETRIEVAL_LAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "retrieval_lab.cli", "run", f"dataset.path={src}",
                           f"cache.dir={tmp_path / 'cache'}", "tracking.enabled=false",
                           f"hydra.run.dir={tmp_path / 'hydra'}"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "dataset.questions=" in proc.stderr and "Traceback" not in proc.stderr
    assert list((tmp_path / "cache" / "datasets").glob("docs-import-*/corpus.jsonl"))  # imported before it stopped
