"""The sweep's fault hook in a real child process: a once-file kills one process only
(tests/unit/test_sweep_launchers.py: the rest, in process)."""
from __future__ import annotations

import signal
import subprocess
import sys


def test_the_fault_hook_with_a_once_file_kills_one_process_only(tmp_path):
    code = "from retrieval_lab.sweep.state import maybe_fault; maybe_fault('child_running'); print('survived')"
    env = {"RETRIEVAL_LAB_FAULT": "child_running:1", "RETRIEVAL_LAB_FAULT_ONCE": str(tmp_path / "once"),
           "PATH": "/usr/bin:/bin"}
    first, second = (subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                     for _ in range(2))
    assert first.returncode == -signal.SIGKILL
    assert second.returncode == 0 and second.stdout.strip() == "survived"
