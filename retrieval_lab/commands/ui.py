"""`retrieval-lab ui`: the MLflow UI on 127.0.0.1 with the fast settings, and the URL of the sorted runs view.

Defaults take 22-31 s to answer on 2 cores (57 processes); with job execution off and one worker ~6 s and ~560 MB.
`#/experiments/<id>` opens on a GenAI overview: the runs table with charts is `#/experiments/<id>/runs?...`.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from retrieval_lab.errors import LabError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_url(base: str, experiment_id: str, metric: str = "ndcg_at_10", chart: bool = True) -> str:
    query = {"workflowType": "machine_learning", "orderByKey": f"metrics.`{metric}`", "orderByAsc": "false"}
    if chart:
        query["compareRunsMode"] = "CHART"
    return f"{base}/#/experiments/{experiment_id}/runs?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)


def shared_view(client, experiment_id: str, metric: str = "ndcg_at_10") -> str:
    """Store a shared view of the runs (sorted by `metric`, its column and charts shown) as an experiment tag.

    The MLflow UI reads `mlflow.sharedViewState.<key>` when the URL names `viewStateShareKey=<key>`: it sets the
    visible columns (the metric, recall@100, latency and the parameters the runs vary) and filters the charts.
    Returns the key.
    """
    import json

    runs = client.search_runs([experiment_id], filter_string="tags.role = 'config'", max_results=500)
    keys = sorted({k for r in runs for k in r.data.params})
    varied = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1
              and not k.startswith(("tracking.", "cache.", "dataset.root"))][:8]
    columns = [f"metrics.`{m}`" for m in dict.fromkeys([metric, "recall_at_100", "query_p50_ms"])]
    columns += [f"params.`{k}`" for k in varied]
    state = {"orderByKey": f"metrics.`{metric}`", "orderByAsc": False, "selectedColumns": columns,
             "chartsSearchFilter": metric, "hideEmptyCharts": True}
    key = f"retrieval-lab-{metric}"
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{key}", json.dumps(state))
    return key


def view_url(base: str, experiment_id: str, key: str, chart: bool = True) -> str:
    url = f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning"
    return url + ("&compareRunsMode=CHART" if chart else "")


def start_ui(uri: str, port: int | None = None, artifact_root: str | None = None,
             timeout: float = 120.0, log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start `mlflow ui` in the background; return (process, base URL) once it answers /health."""
    port = port or free_port()
    exe = Path(sys.executable).parent / "mlflow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    cmd += ["ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if artifact_root:
        cmd += ["--default-artifact-root", artifact_root]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise LabError(f"mlflow ui exited with code {proc.returncode} before answering (port {port} taken?)")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.5)
    stop_ui(proc)
    raise LabError(f"mlflow ui did not answer on {base} within {timeout:.0f} s")


def stop_ui(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cmd_ui(args) -> int:
    from retrieval_lab import tracking

    uri = tracking.tracking_uri({})
    client = tracking.client({})
    experiment = client.get_experiment_by_name(args.experiment) if args.experiment else None
    if args.experiment and experiment is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise LabError(f"no experiment '{args.experiment}' in {uri} (experiments: {names})")
    import signal

    def _stop(signum, frame):  # SIGTERM / SIGHUP: stop the server too (it runs in its own session)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    proc, base = start_ui(uri, args.port or None, tracking.artifact_root({}))
    if experiment is not None:
        key = shared_view(client, experiment.experiment_id, args.metric)
        url = view_url(base, experiment.experiment_id, key, chart=not args.table)
        table = view_url(base, experiment.experiment_id, key, chart=False)
        lines = [f"  runs sorted by {args.metric}, with charts: {url}"]
        if not args.table:
            lines.append(f"  the same as a table:  {table}")
    else:
        lines = [f"  experiments: {base}/#/experiments"]
    print(f"MLflow UI ({uri}) at {base}", *lines, "  Ctrl-C stops it.", sep="\n", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_ui(proc)
