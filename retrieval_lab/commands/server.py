"""`retrieval-lab server start|stop|status`: a team's MLflow tracking server on a throwaway PostgreSQL cluster (the
process library is `tracking.server`)."""
from __future__ import annotations

from retrieval_lab.tracking.postgres import alive, postmaster_port
from retrieval_lab.tracking.server import (DEFAULT_PORT, healthy, read_state, server_dir, start, start_command,
                                           stop)


def cmd_server(args) -> int:
    folder = server_dir(args.dir)
    if args.action == "start":
        folder.mkdir(parents=True, exist_ok=True)
        state, started = start(folder, DEFAULT_PORT if args.port is None else args.port)
        if started:
            print(f"started MLflow (pid {state['mlflow_pid']}) on PostgreSQL (127.0.0.1:{state['postgres_port']}), "
                  f"data in {folder}")
        else:
            if args.port not in (None, 0, state["port"]):
                print(f"note: already running on port {state['port']}; --port {args.port} ignored (stop it first)")
            print(f"already running (pid {state['mlflow_pid']}), data in {folder}")
        print(state["uri"])
        print(f"log runs to it: tracking=server{'' if folder == server_dir() else f' tracking.server_dir={folder}'}"
              f" (or MLFLOW_TRACKING_URI={state['uri']})")
        return 0
    if args.action == "stop":
        stopped = stop(folder)
        print(f"stopped {' and '.join(stopped)}" if stopped else f"no server running in {folder}")
        return 0
    state = read_state(folder)  # status
    if state is None:
        print(f"not running (no server started in {folder})")
        return 1
    mlflow_up = alive(state.get("mlflow_pid")) and healthy(state["uri"])
    pg_up = postmaster_port(folder / "pgdata") is not None
    if mlflow_up and pg_up:
        print(f"running (MLflow pid {state['mlflow_pid']}, PostgreSQL 127.0.0.1:{state['postgres_port']}), "
              f"data in {folder}")
        print(state["uri"])
        return 0
    down = " and ".join(name for name, up in (("MLflow", mlflow_up), ("PostgreSQL", pg_up)) if not up)
    print(f"not running: {down} down (last URI {state['uri']}); `{start_command(folder, state.get('port'))}` "
          "restarts it with its data")
    return 1
