"""Package layout only; everything else is in pyproject.toml.

The repository keeps the config groups (conf/) and the studies (experiments/) at the top level; a wheel carries them
inside the package, as retrieval_lab/conf and retrieval_lab/experiments, where `retrieval_lab.paths` finds them
when there is no checkout. pyproject.toml's `packages.find` cannot map a folder outside the package into it.
"""
from setuptools import find_namespace_packages, setup

CONFIG_FOLDERS = {"retrieval_lab.conf": "conf", "retrieval_lab.experiments": "experiments"}

setup(
    # hydra_plugins.retrieval_lab_launchers: the `hydra/launcher=ray` launcher (Hydra finds launchers only there)
    packages=[*find_namespace_packages(include=["retrieval_lab", "retrieval_lab.*", "hydra_plugins.retrieval_lab_*"]),
              *CONFIG_FOLDERS],
    package_dir=CONFIG_FOLDERS,
    # the whole trees (config groups, studies and their example files such as experiments/own-docs/) as data of the
    # two packages; these patterns alone decide what is data (no MANIFEST.in or VCS listing)
    package_data={**{package: ["**/*"] for package in CONFIG_FOLDERS},
                  "retrieval_lab.judging": ["page.html"]},  # the judging page, read with importlib.resources
    include_package_data=False,
)
