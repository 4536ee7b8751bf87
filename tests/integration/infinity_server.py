"""infinity-emb on 127.0.0.1 for the served-model tests and benchmark: started from its own virtualenv (`make
infinity-server`), one or more (model folder, served name) pairs, stopped on exit."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
INFINITY = Path(os.environ.get("RETRIEVAL_LAB_INFINITY", REPO / ".cache" / "infinity-venv" / "bin" / "infinity_emb"))
STARTUP_S = 300


class ServerFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def infinity_server(models: list[tuple[Path, str]], log: Path):
    """Yields the base URL once the server answers GET /models."""
    port = free_port()
    command = [str(INFINITY), "v2", "--host", "127.0.0.1", "--port", str(port)]
    for folder, name in models:
        command += ["--model-id", str(folder), "--served-model-name", name]
    for flag in ("--engine torch", "--device cpu", "--no-bettertransformer", "--no-model-warmup", "--no-compile"):
        command += flag.split() * len(models)  # one per model
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                raise ServerFailed(f"infinity exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/models", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"infinity did not answer within {STARTUP_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
