"""`retrieval-lab --version` and `retrieval-lab info`: the version, which config folders are in use (checkout,
$RETRIEVAL_LAB_HOME or the installed package) and where a run's cache, data and MLflow runs go."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from retrieval_lab import __version__, paths

SOURCE_NAMES = {"checkout": "checkout", paths.HOME_ENV: f"${paths.HOME_ENV}", "package": "installed package"}


def cmd_info(args) -> int:
    print("\n".join(report(args.overrides)))
    return 0


def report(overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Lines describing the installation and, for a run with `overrides`, its cache root, data root and tracking
    URI (read from the composed config, as `retrieval-lab run <overrides>` would use them; the tracking store is not
    created)."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import data_root

    home = paths.config_home()
    lines = [f"retrieval-lab {__version__} (Python {sys.version.split()[0]}, package {paths.PACKAGE_DIR})",
             f"  configs       {SOURCE_NAMES[home.source]}: {home.root / 'conf'}, {home.root / 'experiments'}"]
    unused_home = os.environ.get(paths.HOME_ENV)
    if home.source == "checkout" and unused_home:
        lines.append(f"                (${paths.HOME_ENV}={unused_home} is not used: a checkout's own folders come "
                     "first)")
    personal = paths.personal_config_dir()
    how = f"${paths.PERSONAL_CONFIG_ENV}" if os.environ.get(paths.PERSONAL_CONFIG_ENV) else "default"
    lines.append(f"  own configs   {personal} ({how}; " + ("in use" if personal.is_dir() else "absent: create it to "
                 "add config groups and studies") + ")")
    shadowed_options = _shadowed(personal, home.root)
    if shadowed_options:
        lines.append(f"                not used, a shipped option has the name: {', '.join(shadowed_options)} "
                     "(rename them)")

    cfg = compose_config(list(overrides))
    cache = paths.cache_root(cfg.cache.get("dir"))
    lines.append(f"  cache         {cache} (registered models' options in {paths.user_conf_dir(cfg.cache.get('dir'))})")
    dataset_path = cfg.dataset.get("path")
    data = data_root(cfg.dataset.get("root")).resolve()
    lines.append(f"  data          {data}" + (f" (dataset.path={dataset_path} for this run)" if dataset_path else ""))
    lines.append(f"  tracking      {_tracking_uri(cfg.tracking)}")
    return lines


def _shadowed(personal: Path, home: Path) -> list[str]:
    """The personal folder's options that Hydra never loads: conf/ (or experiments/) holds one of the same name."""
    if not personal.is_dir():
        return []
    found = []
    for path in sorted(personal.rglob("*.yaml")):
        name = path.relative_to(personal)
        shipped = home / name if name.parts[0] == "experiments" else home / "conf" / name
        if shipped.is_file():
            found.append(str(name))
    return found


def _tracking_uri(node) -> str:
    """The URI `tracking.tracking_uri` gives, without creating the SQLite folder."""
    if node.get("server_dir") and not node.get("uri"):  # tracking=server
        from retrieval_lab.tracking.server import read_state, server_dir

        state = read_state(server_dir(node.get("server_dir")))
        return state["uri"] if state else f"none: tracking=server, and no server started in {node.get('server_dir')}"
    uri = node.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(node.get("root") or "mlruns").expanduser().resolve()
    return f"sqlite:///{root / 'mlflow.db'}" + ("" if root.is_dir() else " (created by the first run)")
