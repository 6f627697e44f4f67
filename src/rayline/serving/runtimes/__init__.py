"""Ways of serving a model, listed as data. Add new ones here.

Example:
    >>> runtime = get_runtime(DeploymentMode.DOCKER, get_settings())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rayline.metadata import DeploymentMode
from rayline.serving.docker_engine import engine_answers
from rayline.serving.runtimes.base import Liveness, ServingRuntime, Started, StartRequest
from rayline.serving.runtimes.docker import DockerRuntime
from rayline.serving.runtimes.ray_serve import RayServeRuntime

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "RUNTIMES",
    "Liveness",
    "ServingRuntime",
    "StartRequest",
    "Started",
    "choose_mode",
    "get_runtime",
]

RUNTIMES: dict[DeploymentMode, type[ServingRuntime]] = {
    DeploymentMode.DOCKER: DockerRuntime,
    DeploymentMode.RAY: RayServeRuntime,
}


def choose_mode(settings: Settings, requested: str | None = None) -> DeploymentMode:
    """The mode asked for, else the setting; ``auto`` is Docker when an engine answers."""
    wanted = requested or settings.serving_mode
    if wanted == "auto":
        return DeploymentMode.DOCKER if engine_answers() else DeploymentMode.RAY
    return DeploymentMode(wanted)


def get_runtime(mode: DeploymentMode | str, settings: Settings) -> ServingRuntime:
    """The runtime that serves deployments of ``mode``."""
    return RUNTIMES[DeploymentMode(mode)](settings)
