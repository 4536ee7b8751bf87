"""The PostgreSQL-backed tracking server under a Ray sweep: lost and duplicate runs, logging cost against SQLite,
and two faults, measured side by side in one run.

The sweep: 50 BM25 configurations on Cranfield (retriever.k1 x retriever.b, 10 x 5), `hydra/launcher=ray` on a local
cluster of 2 CPUs (2 workers), stage cache off so every scenario does the same work. Scenarios, one after the other:
1. PostgreSQL: the sweep logging to `retrieval-lab server` (started by this script in a temporary folder);
2. SQLite: the same sweep logging to a fresh SQLite store;
3. worker killed: scenario 1 with one Ray worker SIGKILLed at its 10th configuration (the lab's fault hook) and
   `hydra.launcher.ray.remote.max_retries=0`, so the configuration is lost; then the same command again (resume);
4. worker killed, Ray retries (the default, max_retries=3): the same kill, no rerun;
5. server restarted: scenario 1 while `retrieval-lab server stop` + `start` runs once 20 configurations are done.

Per scenario: configurations FINISHED once (expected 50), lost (no FINISHED run), duplicates (more than one),
runs left RUNNING, the command's exit code(s) and wall time. Logging cost per run: a child run's MLflow duration
(create_run to set_terminated) minus its `pipeline_seconds`: the params, metrics, three artifacts and the end of
the run; job overhead per run: the job's wall time (its record in the sweep folder) minus `pipeline_seconds`:
that plus the resume look-up, the orphan check and creating the run.

    .venv/bin/python benchmarks/scale_tracking.py [--out benchmarks/results/scale_tracking.json]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "retrieval_lab.cli"]
K1 = "0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2"
B = "0.2,0.4,0.6,0.8,1.0"
CONFIGS = 50
KILL_AT = 10  # the first worker to reach its 10th configuration dies there


def free_port() -> int:
    from retrieval_lab.tracking.postgres import free_port as free

    return free()


def sweep_command(tracking: list[str], experiment: str, sweep_dir: Path, extra=()) -> list[str]:
    return [*CLI, "sweep", "dataset=cranfield", f"retriever.k1={K1}", f"retriever.b={B}", "cache.enabled=false",
            "hydra/launcher=ray", "hydra.launcher.ray.local.num_cpus=2", f"tracking.experiment={experiment}",
            *tracking, f"hydra.sweep.dir={sweep_dir}", *extra]


def run(cmd, env, log: Path, timeout=3600) -> tuple[int, float]:
    t0 = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                            cwd=log.parent).returncode
    return rc, time.perf_counter() - t0


def count(uri: str, experiment: str, sweep_dirs: list[Path]) -> dict:
    """Lost / duplicate / RUNNING counts and per-run costs of an experiment's child runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    children = client.search_runs([exp.experiment_id], "tags.role = 'config'", max_results=5000)
    parents = client.search_runs([exp.experiment_id], "tags.role = 'sweep'", max_results=100)
    finished = collections.Counter(c.info.run_name for c in children if c.info.status == "FINISHED")
    logging_s, job_s = [], []
    pipeline = {}
    for c in children:
        if c.info.status == "FINISHED" and "pipeline_seconds" in c.data.metrics:
            pipeline[c.info.run_id] = c.data.metrics["pipeline_seconds"]
            logging_s.append((c.info.end_time - c.info.start_time) / 1000 - c.data.metrics["pipeline_seconds"])
    for folder in sweep_dirs:
        for record in folder.glob(".sweep/*/jobs/*.json"):
            data = json.loads(record.read_text())
            if data["status"] == "finished" and data["run_id"] in pipeline:
                job_s.append(data["seconds"] - pipeline[data["run_id"]])
    return {"finished_once": sum(1 for v in finished.values() if v == 1), "lost": CONFIGS - len(finished),
            "duplicates": sum(v - 1 for v in finished.values()),
            "running_left": sum(c.info.status == "RUNNING" for c in children),
            "killed_runs": sum(c.info.status == "KILLED" for c in children),
            "parents": sorted(p.info.status for p in parents),
            "logging_s_median": statistics.median(logging_s) if logging_s else None,
            "logging_s_mean": statistics.fmean(logging_s) if logging_s else None,
            "job_overhead_s_median": statistics.median(job_s) if job_s else None,
            "pipeline_s_median": statistics.median(pipeline.values()) if pipeline else None}


def records_done(sweep_dir: Path) -> int:
    return len(list(sweep_dir.glob(".sweep/*/jobs/*.json")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale_tracking.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server data, logs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="retrieval-lab-scale-"))
    work.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must enter the folder
    log = work / "commands.log"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # The code version in every configuration's resume hash, fixed at the start: an edit to the checkout during the
    # benchmark must not make the resumed sweep recompute (and count as duplicates) what the killed one finished.
    from retrieval_lab.sweep.state import source_revision

    env["RETRIEVAL_LAB_CODE_VERSION"] = source_revision()
    srv, port = work / "srv", free_port()
    results: dict = {"configs": CONFIGS, "uptime_before": os.popen("uptime").read().strip(), "scenarios": {}}
    try:
        rc, seconds = run([*CLI, "server", "start", "--dir", str(srv), "--port", str(port)], env, log)
        if rc != 0:
            print(f"server start failed; see {log}", file=sys.stderr)
            return 1
        results["server_start_s"] = seconds
        uri = f"http://127.0.0.1:{port}"
        server = ["tracking=server", f"tracking.server_dir={srv}"]

        def scenario(name: str, commands: list[tuple[list[str], dict]], store_uri: str, experiment: str,
                     dirs: list[Path], during=None) -> None:
            outcome = {"exit_codes": [], "wall_s": []}
            for cmd, extra_env in commands:
                print(f"[{name}] {' '.join(cmd[3:6])} ...", flush=True)
                if during is None:
                    rc, seconds = run(cmd, {**env, **extra_env}, log)
                else:
                    rc, seconds = during(cmd, {**env, **extra_env})
                    outcome.update(during.info)
                outcome["exit_codes"].append(rc)
                outcome["wall_s"].append(round(seconds, 1))
            outcome.update(count(store_uri, experiment, dirs))
            results["scenarios"][name] = outcome
            print(f"[{name}] {json.dumps(outcome)}", flush=True)

        # 1-2: the same sweep on PostgreSQL and on SQLite
        d1 = work / "pg"
        scenario("postgresql", [(sweep_command(server, "scale_pg", d1), {})], uri, "scale_pg", [d1])
        sqlite_uri = f"sqlite:///{work / 'sqlite' / 'mlflow.db'}"
        (work / "sqlite").mkdir()
        d2 = work / "sq"
        scenario("sqlite", [(sweep_command([f"tracking.uri={sqlite_uri}"], "scale_sqlite", d2), {})], sqlite_uri,
                 "scale_sqlite", [d2])

        # 3: a worker killed, no Ray retry, then the same command again
        d3 = work / "kill"
        fault = {"RETRIEVAL_LAB_FAULT": f"child_running:{KILL_AT}", "RETRIEVAL_LAB_FAULT_ONCE": str(work / "kill-once")}
        cmd3 = sweep_command(server, "scale_kill", d3, ["hydra.launcher.ray.remote.max_retries=0"])
        scenario("worker_killed_then_resumed", [(cmd3, fault), (cmd3, {})], uri, "scale_kill", [d3])

        # 4: a worker killed, Ray's retries (the default)
        d4 = work / "retry"
        fault4 = {**fault, "RETRIEVAL_LAB_FAULT_ONCE": str(work / "retry-once")}
        scenario("worker_killed_ray_retries", [(sweep_command(server, "scale_retry", d4), fault4)], uri,
                 "scale_retry", [d4])

        # 5: the server stopped and started again once 20 configurations are done
        d5 = work / "restart"

        def with_restart(cmd, run_env):
            t0 = time.perf_counter()
            with open(log, "a") as out:
                out.write(f"\n$ {' '.join(cmd)}\n")
                out.flush()
                proc = subprocess.Popen(cmd, env=run_env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
                while records_done(d5) < 20 and proc.poll() is None:
                    time.sleep(0.2)
                at = records_done(d5)
                t_down = time.perf_counter()
                run([*CLI, "server", "stop", "--dir", str(srv)], env, log)
                run([*CLI, "server", "start", "--dir", str(srv), "--port", str(port)], env, log)
                with_restart.info = {"restarted_after_configs": at,
                                     "server_down_s": round(time.perf_counter() - t_down, 1)}
                rc = proc.wait(timeout=3600)
            return rc, time.perf_counter() - t0

        with_restart.info = {}
        scenario("server_restarted", [(sweep_command(server, "scale_restart", d5), {})], uri, "scale_restart", [d5],
                 during=with_restart)
    finally:
        run([*CLI, "server", "stop", "--dir", str(srv)], env, log)
        results["uptime_after"] = os.popen("uptime").read().strip()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0


def print_table(results: dict) -> None:
    def cell(value, digits=3):
        return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    print("\n| scenario | exit codes | wall s | finished once | lost | duplicates | left RUNNING | KILLED runs | "
          "logging s/run (median) | job overhead s/run (median) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in results["scenarios"].items():
        print(f"| {name} | {' then '.join(map(str, s['exit_codes']))} | {' + '.join(map(str, s['wall_s']))} | "
              f"{s['finished_once']} | {s['lost']} | {s['duplicates']} | {s['running_left']} | {s['killed_runs']} | "
              f"{cell(s['logging_s_median'])} | {cell(s['job_overhead_s_median'])} |")
    restart = results["scenarios"].get("server_restarted", {})
    if restart:
        print(f"\nserver restarted after {restart.get('restarted_after_configs')} configurations, down "
              f"{restart.get('server_down_s')} s (stop + start)")
    print(f"load: {results['uptime_before']}  ->  {results['uptime_after']}")


if __name__ == "__main__":
    sys.exit(main())
