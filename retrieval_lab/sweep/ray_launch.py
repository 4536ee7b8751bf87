"""`hydra/launcher=ray`: a sweep's configurations as Ray tasks (conf/hydra/launcher/ray.yaml).

With `hydra.launcher.ray.init.address` null (the default) a Ray cluster is started on this machine for the sweep,
with the `local` arguments (CPUs, no dashboard, a small object store), and shut down once the jobs are done. With an
address (`auto`, `HOST:6379`, `ray://HOST:10001`) the jobs join that running cluster, which is left running.

Each configuration runs in a Ray worker through Hydra's `run_job`, as under any other launcher, so the parent/child
runs, resume and the leaderboard work the same. Workers get the sweep's environment through the job's runtime_env:
the sweep context (parent run, experiment, tracking URI, state folder: RETRIEVAL_LAB_SWEEP_*), MLflow's settings
(HTTP retries), the cache and data roots and the offline switches; so a worker on another node logs beside the parent
and shares the cache, when the cache and the sweep folder lie on a filesystem every node mounts.

A task whose worker dies (killed, out of memory, node lost) is run again by Ray (`remote.max_retries`); the retry
marks the dead attempt's run KILLED. A configuration still lost after its retries is reported once the other jobs
have ended: its run is marked KILLED, the sweep exits 1, and the same command resumes it.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("retrieval_lab.sweep")

# What a worker needs from the sweep's environment: the sweep context, MLflow's settings (telemetry off, HTTP
# retries), the cache and data roots, offline model loading.
FORWARDED_ENV_PREFIXES = ("RETRIEVAL_LAB_", "MLFLOW_", "HF_", "TOKENIZERS_PARALLELISM", "DO_NOT_TRACK",
                          "HYDRA_FULL_ERROR")


def forwarded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {key: value for key, value in environ.items() if key.startswith(FORWARDED_ENV_PREFIXES)}


def init_arguments(ray_cfg: DictConfig, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """ray.init() arguments: `init`, plus `local` when no address is given, plus the forwarded environment."""
    init = OmegaConf.to_container(ray_cfg.get("init") or {}, resolve=True)
    if not init.get("address"):
        # "local": a new cluster even when RAY_ADDRESS is set or `ray start` left one running on this machine (which
        # ray.init() would join, refusing the local arguments)
        init = {**OmegaConf.to_container(ray_cfg.get("local") or {}, resolve=True), **init, "address": "local"}
    runtime_env = dict(init.pop("runtime_env", None) or {})
    users = {key: str(value) for key, value in (runtime_env.get("env_vars") or {}).items()}  # Ray takes strings
    runtime_env["env_vars"] = {**forwarded_env(environ), **users}
    init["runtime_env"] = runtime_env
    return init


def _run_job(hydra_context, sweep_config: DictConfig, task_function,
             singleton_state: dict) -> tuple[JobReturn, str, str]:
    """One configuration, inside a Ray worker; returns what it printed to stdout and stderr beside its result, for
    the driver to print as each configuration ends (as the other launchers show them; Ray's own forwarding would
    prefix every line and may drop the last ones at shutdown)."""
    from hydra.core.hydra_config import HydraConfig

    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                         job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    return result, out.getvalue(), err.getvalue()


# Ray retries a cluster address that does not answer for minutes; a sweep must fail long before that.
CONNECT_TIMEOUT_S = 10.0  # a TCP connection to the address, before ray.init
JOIN_TIMEOUT_S = 60.0     # ray.init itself (an address that accepts connections but is no Ray cluster)


def unreachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why nothing answers at a `HOST:PORT` or `ray://HOST:PORT` address (None when a TCP connection opens, or
    for `auto` and addresses without a port, which Ray resolves itself)."""
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except TimeoutError:
        return f"nothing answers on {host}:{port} (no reply within {timeout:.0f} s)"
    except OSError as exc:
        return f"nothing answers on {host}:{port} ({exc.strerror or type(exc).__name__})"


@contextlib.contextmanager
def _deadline(seconds: float):
    """TimeoutError in the main thread after `seconds` (nothing elsewhere: signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _start(ray_cfg: DictConfig) -> None:
    import ray

    arguments = init_arguments(ray_cfg)
    address = arguments["address"]
    log.info("starting Ray: %s", {k: v for k, v in arguments.items() if k != "runtime_env"})
    joining = address != "local"  # starting a cluster here has no deadline: a busy machine may take long
    reason = unreachable(str(address)) if joining else None
    if reason is None:
        try:
            with _deadline(JOIN_TIMEOUT_S) if joining else contextlib.nullcontext():
                ray.init(**arguments)
        except Exception as exc:  # a wrong address or token is the user's to fix: no traceback
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
            with contextlib.suppress(Exception):
                ray.shutdown()
    if reason is None:
        return
    if address == "local":
        what = "cannot start a local Ray cluster"
        fix = ("check the hydra.launcher.ray.local arguments, or join a running cluster with "
               "hydra.launcher.ray.init.address=HOST:6379")
    else:
        what = f"cannot join the Ray cluster at {address} (hydra.launcher.ray.init.address)"
        fix = (f"check that a cluster runs there (`ray status --address {address}`; start one on that host with "
               "`ray start --head`), and that this machine reaches it; or drop hydra.launcher.ray.init.address "
               "(hydra.launcher.ray.init.address=null) to start a cluster on this machine for the sweep. A cluster "
               "with token authentication (what `ray start` sets up by default in Ray 2.60) needs "
               "RAY_AUTH_MODE=token in this shell and the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
    print(f"error: hydra/launcher=ray: {what}: {reason}\n  fix: {fix}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    try:
        import ray
    except ImportError:
        print("error: hydra/launcher=ray needs Ray, which is not installed\n  fix: pip install "
              "'retrieval-lab[cluster]' (or `pip install 'ray>=2.60,<3'`)", file=sys.stderr, flush=True)
        raise SystemExit(2) from None

    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    started_here = not ray.is_initialized()
    if started_here:
        _start(launcher.ray_cfg)
    try:
        remote_options = OmegaConf.to_container(launcher.ray_cfg.get("remote") or {}, resolve=True)
        task = ray.remote(**remote_options)(_run_job) if remote_options else ray.remote(_run_job)
        pending = {}
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = launcher.hydra_context.config_loader.load_sweep_config(config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"ray_job_{idx}"
                sweep_config.hydra.job.num = idx
            ref = task.options(name=f"config-{idx}").remote(launcher.hydra_context, sweep_config,
                                                            launcher.task_function, Singleton.get_state())
            pending[ref] = (idx, list(overrides))
        returns, lost = _collect(pending)
    finally:
        if started_here:
            ray.shutdown()
    if lost:
        _report_lost(lost, remote_options.get("max_retries"))
    return [returns[idx] for idx in sorted(returns)]


def _collect(pending: dict) -> tuple[dict[int, JobReturn], list[tuple[int, list[str], Exception]]]:
    """Every job's return, waiting for all of them even when some are lost."""
    import ray
    from ray.exceptions import RayError

    returns, lost = {}, []
    refs = list(pending)
    while refs:
        done, refs = ray.wait(refs, num_returns=1)
        for ref in done:
            idx, overrides = pending[ref]
            try:
                returns[idx], out, err = ray.get(ref)
            except RayError as exc:
                lost.append((idx, overrides, exc))
                continue
            sys.stdout.write(out)
            sys.stdout.flush()
            sys.stderr.write(err)
            sys.stderr.flush()
    return returns, sorted(lost, key=lambda item: item[0])


def _report_lost(lost: list[tuple[int, list[str], Exception]], retries: Any) -> None:
    from retrieval_lab.sweep.resume import kill_lost_job_runs
    from retrieval_lab.sweep.state import SweepContext

    ctx = SweepContext.from_env()
    if ctx is not None:
        try:
            kill_lost_job_runs(ctx, [idx for idx, _, _ in lost], "its Ray task was lost (worker died)")
        except Exception as exc:  # the store may be what failed: the next run marks them anyway on this host
            log.warning("could not mark the lost configurations' runs KILLED: %s", exc)
    print(f"error: {len(lost)} configuration(s) did not finish: Ray lost their task after "
          f"{retries if retries is not None else 3} retries", file=sys.stderr)
    for idx, overrides, exc in lost:
        reason = " ".join(str(exc).split())
        print(f"  #{idx} {' '.join(filter_overrides(overrides))}: {type(exc).__name__}: {reason[:300]}",
              file=sys.stderr)
    print("  the other configurations are logged; run the same command again to resume (finished configurations "
          "are skipped); more retries: hydra.launcher.ray.remote.max_retries=N", file=sys.stderr, flush=True)
    raise SystemExit(1)
