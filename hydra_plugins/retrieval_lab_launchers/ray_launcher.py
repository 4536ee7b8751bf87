"""`hydra/launcher=ray`: the launcher class Hydra instantiates from conf/hydra/launcher/ray.yaml.

The lab ships its own Ray launcher instead of hydra-ray-launcher 1.2.2: that package pins `cloudpickle<3` (for its
AWS launcher only), which cannot be installed beside joblib 1.6 (it needs cloudpickle>=3). The configuration keys
are the same (`hydra.launcher.ray.init.*`, `hydra.launcher.ray.remote.*`). Ray is imported when a sweep launches.
"""
from __future__ import annotations

from typing import Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayLauncher(Launcher):
    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None
        self.config: Optional[DictConfig] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from retrieval_lab.sweep.ray_launch import launch

        return launch(self, job_overrides, initial_job_idx)
