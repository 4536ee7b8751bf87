"""The package as a user installs it: a wheel, built from the sdist, installed into a fresh folder, whose CLI runs and
sweeps from a working directory outside the checkout with the configs it carries (no repository on sys.path).

The dependencies come from this venv's site-packages (PYTHONPATH=<target>:<site-packages>); the editable install's
import hook there maps `retrieval_lab` to the checkout, so each test checks which copy ran.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import retrieval_lab
from tests.integration.sweep_util import runs, tiny_beir

REPO = Path(__file__).resolve().parents[2]
VERSION = retrieval_lab.__version__
# Left out of the copy the build starts from: the venv, caches and run outputs (a clone has none of them).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".cache", ".pytest_cache", "__pycache__", "*.egg-info", "build",
                                    "dist", "mlruns", "multirun", "outputs")


def _copy_source(dest: Path) -> None:
    """The files a clone has (plus new, not ignored ones), as `git ls-files` lists them; a plain copy without git."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(REPO, dest, ignore=NOT_SOURCE)
        return
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not part of the build
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _checked(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """sdist from a copy of the repository, the wheel built from the unpacked sdist, installed with --target into a
    folder inside an unrelated git repository (whose commit must not be mistaken for the package's)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    _copy_source(source)
    build_sdist = "import sys, setuptools.build_meta as backend; print(backend.build_sdist(sys.argv[1]))"
    name = _checked(subprocess.run([sys.executable, "-c", build_sdist, str(base / "sdist")], cwd=source,
                                   capture_output=True, text=True, timeout=300)).stdout.split()[-1]
    sdist = base / "sdist" / name
    with tarfile.open(sdist) as tar:
        tar.extractall(base / "unpacked", filter="data")
    (unpacked,) = (base / "unpacked").iterdir()
    _checked(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                             str(base / "wheels"), str(unpacked)], capture_output=True, text=True, timeout=300))
    (wheel,) = (base / "wheels").glob("retrieval_lab-*.whl")

    project = base / "someone-elses-project"
    project.mkdir()
    if shutil.which("git"):
        git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
        _checked(subprocess.run([*git, "init", "-q"], capture_output=True, text=True))
        _checked(subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "unrelated"], capture_output=True,
                                text=True))
    target = project / "site"
    _checked(subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                             str(target), str(wheel)], capture_output=True, text=True, timeout=300))

    work = base / "work"  # the working directory of every command: outside the checkout
    work.mkdir()
    assert not work.resolve().is_relative_to(REPO)
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "RETRIEVAL_LAB_HOME", "RETRIEVAL_LAB_CONFIG", "RETRIEVAL_LAB_CODE_VERSION"}}
    env.update(PYTHONPATH=os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]]),
               RETRIEVAL_LAB_CACHE=str(base / "cache"), RETRIEVAL_LAB_DATA=str(base / "data"),
               XDG_CONFIG_HOME=str(base / "xdg"),  # no personal config folder unless a test writes one
               MLFLOW_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}")
    return SimpleNamespace(base=base, sdist=sdist, wheel=wheel, target=target, work=work, env=env,
                           cli=target / "bin" / "retrieval-lab", uri=env["MLFLOW_TRACKING_URI"],
                           tiny=tiny_beir(base / "tiny"))


def _run(installed, args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=installed.work, env={**installed.env, **(env_extra or {})}, capture_output=True,
                          text=True, timeout=timeout)


def test_sdist_and_wheel_carry_the_configs_code_and_metadata(installed):
    source = installed.base / "source"
    config_files = {str(p.relative_to(source)) for folder in ("conf", "experiments")
                    for p in (source / folder).rglob("*") if p.is_file()}
    assert {"conf/config.yaml", "conf/retriever/bm25.yaml", "experiments/bm25.yaml"} <= config_files
    with tarfile.open(installed.sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert config_files <= in_sdist
    assert {"LICENSE", "pyproject.toml", "setup.py", "README.md"} <= in_sdist

    with zipfile.ZipFile(installed.wheel) as whl:
        in_wheel = set(whl.namelist())
        dist_info = f"retrieval_lab-{VERSION}.dist-info"
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert {f"retrieval_lab/{name}" for name in config_files} <= in_wheel
    code = {str(p.relative_to(source)) for p in (source / "retrieval_lab").rglob("*.py")}
    assert code <= in_wheel
    assert "retrieval_lab/judging/page.html" in in_wheel  # package data: `judge` serves it from the install
    # nothing else at top level but the `hydra/launcher=ray` plugin, where Hydra looks for launchers
    assert {name.split("/")[0] for name in in_wheel} == {"retrieval_lab", "hydra_plugins", dist_info}
    assert "hydra_plugins/retrieval_lab_launchers/ray_launcher.py" in in_wheel
    assert installed.wheel.name == f"retrieval_lab-{VERSION}-py3-none-any.whl"
    assert f"\nVersion: {VERSION}\n" in metadata and "\nLicense-Expression: MIT\n" in metadata
    assert f"{dist_info}/licenses/LICENSE" in in_wheel
    assert metadata.count("\nClassifier: ") >= 5  # no Project-URL until the project has a public address
    assert "retrieval-lab = retrieval_lab.cli:main" in entry_points


def test_installed_cli_runs_and_sweeps_outside_the_checkout(installed):
    where = _checked(_run(installed, [sys.executable, "-c", "import retrieval_lab; print(retrieval_lab.__file__)"]))
    assert Path(where.stdout.strip()).is_relative_to(installed.target)

    data = [f"dataset.path={installed.tiny}", "dataset.name=tiny"]
    proc = _checked(_run(installed, [str(installed.cli), "run", *data, "tracking.experiment=installed-run"]))
    assert "ndcg" in proc.stdout and installed.uri in proc.stdout
    client, (run,) = runs(installed.uri, "installed-run")
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.name"] == "tiny" and run.data.params["retriever.name"] == "bm25"
    assert 0 < run.data.metrics["ndcg_at_10"] <= 1
    trec = Path(client.download_artifacts(run.info.run_id, "run.trec", str(installed.base / "dl")))
    assert len({line.split()[0] for line in trec.read_text().splitlines()}) == 12  # every query of the tiny set
    assert (installed.work / "outputs").is_dir()  # Hydra's run folder: in the working directory

    proc = _checked(_run(installed, [str(installed.cli), "sweep", "bm25", *data]))
    grid = yaml.safe_load((REPO / "experiments" / "bm25.yaml").read_text())["hydra"]["sweeper"]["params"]
    expected = {f"k1={k1} b={b}" for k1, b in itertools.product(*(str(grid[f"retriever.{key}"]).split(",")
                                                                  for key in ("k1", "b")))}
    assert f"{len(expected)}/{len(expected)} configs" in proc.stdout
    _, (parent,) = runs(installed.uri, "bm25-tiny", "sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["study"] == "bm25"
    # the installed package's version, not the commit of the git repository its folder happens to lie in
    assert parent.data.tags["git_commit"] == f"retrieval-lab=={VERSION}"
    _, children = runs(installed.uri, "bm25-tiny", "config")
    assert {c.info.run_name for c in children} == expected
    assert {c.info.status for c in children} == {"FINISHED"}


def test_version_and_info_say_which_configs_and_where_runs_go(installed):
    package = installed.target / "retrieval_lab"
    for command in ([str(installed.cli), "--version"], [sys.executable, "-m", "retrieval_lab", "info"]):
        out = _checked(_run(installed, command)).stdout
        assert out.startswith(f"retrieval-lab {VERSION} ")
        assert f"installed package: {package / 'conf'}, {package / 'experiments'}" in out
        assert f"cache         {installed.env['RETRIEVAL_LAB_CACHE']} " in out
        assert f"data          {installed.env['RETRIEVAL_LAB_DATA']}\n" in out
        assert f"tracking      {installed.uri}\n" in out
        assert f"own configs   {installed.base / 'xdg' / 'retrieval-lab'} (default; absent" in out
    out = _checked(_run(installed, [str(installed.cli), "info", f"cache.dir={installed.base / 'other-cache'}",
                                    "tracking.uri=sqlite:///elsewhere.db"])).stdout
    assert f"cache         {installed.base / 'other-cache'} " in out and "tracking      sqlite:///elsewhere.db" in out

    help_text = _checked(_run(installed, [sys.executable, "-m", "retrieval_lab", "--help"])).stdout
    assert help_text.startswith("usage: retrieval-lab ") and "info" in help_text


def test_retrieval_lab_home_replaces_the_packaged_configs(installed):
    home = installed.base / "home"
    shutil.copytree(installed.target / "retrieval_lab" / "conf", home / "conf")
    shutil.copytree(installed.target / "retrieval_lab" / "experiments", home / "experiments")
    (home / "conf" / "retriever" / "home_bm25.yaml").write_text("defaults:\n  - bm25\n  - _self_\nk1: 0.3\n")
    env = {"RETRIEVAL_LAB_HOME": str(home)}

    out = _checked(_run(installed, [str(installed.cli), "info"], env)).stdout
    assert f"$RETRIEVAL_LAB_HOME: {home / 'conf'}, {home / 'experiments'}" in out
    _checked(_run(installed, [str(installed.cli), "run", f"dataset.path={installed.tiny}", "retriever=home_bm25",
                              "tracking.experiment=from-home"], env))
    _, (run,) = runs(installed.uri, "from-home")
    assert run.data.params["retriever.k1"] == "0.3" and run.data.params["retriever.name"] == "bm25"

    for command in (["--version"], ["run", "tracking.enabled=false"]):
        proc = _run(installed, [str(installed.cli), *command], {"RETRIEVAL_LAB_HOME": str(installed.base / "nowhere")})
        assert proc.returncode == 2, proc.stderr
        assert "$RETRIEVAL_LAB_HOME=" in proc.stderr and "no conf/config.yaml" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_personal_config_folder_adds_options_and_studies(installed):
    personal = installed.base / "xdg" / "retrieval-lab"
    (personal / "retriever").mkdir(parents=True)
    (personal / "experiments").mkdir()
    (personal / "retriever" / "my_bm25.yaml").write_text("defaults:\n  - bm25\n  - _self_\nk1: 0.3\n")
    (personal / "experiments" / "my_study.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /retriever: my_bm25\ntracking:\n  experiment: my-study\n"
        "hydra:\n  sweeper:\n    params:\n      retriever.b: 0.3,0.9\n")
    (personal / "retriever" / "bm25.yaml").write_text("name: bm25\nk1: 0.1\n")  # shadowed by the shipped bm25
    try:
        out = _checked(_run(installed, [str(installed.cli), "info"])).stdout
        assert f"own configs   {personal} (default; in use)" in out
        assert "not used, a shipped option has the name: retriever/bm25.yaml (rename them)" in out
        _checked(_run(installed, [str(installed.cli), "sweep", "my_study", f"dataset.path={installed.tiny}"]))
        _, children = runs(installed.uri, "my-study", "config")
        assert sorted(c.data.params["retriever.b"] for c in children) == ["0.3", "0.9"]
        assert {c.data.params["retriever.k1"] for c in children} == {"0.3"}
        assert {c.info.status for c in children} == {"FINISHED"}

        proc = _run(installed, [str(installed.cli), "sweep", "no_such_study"])
        assert proc.returncode == 2 and "my_study" in proc.stderr and "quickstart" in proc.stderr  # both folders
    finally:
        shutil.rmtree(personal)

    proc = _run(installed, [str(installed.cli), "run", "tracking.enabled=false"],
                {"RETRIEVAL_LAB_CONFIG": str(installed.base / "typo")})
    assert proc.returncode == 2 and "$RETRIEVAL_LAB_CONFIG=" in proc.stderr and "Traceback" not in proc.stderr


def test_a_checkout_uses_its_own_configs_and_says_so(tmp_path):
    env = {**os.environ, "RETRIEVAL_LAB_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}  # this checkout's package
    proc = _checked(subprocess.run([sys.executable, "-m", "retrieval_lab", "--version"], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=120))
    assert f"configs       checkout: {REPO / 'conf'}, {REPO / 'experiments'}" in proc.stdout
    assert f"($RETRIEVAL_LAB_HOME={tmp_path} is not used: a checkout's own folders come first)" in proc.stdout
