"""The interface every way of serving implements: start, check, stop one deployment."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rayline.metadata import Deployment, DeploymentMode
from rayline.serving.model import ServedModel
from rayline.serving.spec import ServingSpec

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["Liveness", "ServingRuntime", "StartRequest", "Started"]


@dataclass(frozen=True)
class StartRequest:
    """Everything a runtime needs to start one deployment.

    Attributes:
        deployment_id: The deployment row's id.
        served: The model version.
        store_uri: Root URI of the artifact store holding the version.
        model_dir: The fetched, verified version on this machine.
        spec: How to serve it.
        host: Address the HTTP server binds.
        port: Port asked for, or None to pick one.
        labels: Extra labels for what the runtime creates.
        progress: Called with progress lines.
    """

    deployment_id: str
    served: ServedModel
    store_uri: str
    model_dir: Path
    spec: ServingSpec
    host: str
    port: int | None
    labels: dict[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] = print


@dataclass(frozen=True)
class Started:
    """Where a started deployment answers, and what to record about it."""

    endpoint_url: str
    port: int
    image: str | None = None
    container_id: str | None = None


@dataclass(frozen=True)
class Liveness:
    """Whether a deployment's server still runs; ``reason`` says why not."""

    alive: bool
    reason: str = ""


class ServingRuntime(abc.ABC):
    """One way of running the serving app (a Docker container, a Serve app on Ray)."""

    mode: ClassVar[DeploymentMode]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def start(self, request: StartRequest) -> Started:
        """Start serving; return as soon as the server is starting (not yet healthy).

        Raises:
            PortInUseError: The port asked for is taken.
            ServingError: Anything else went wrong; nothing is left running.
        """

    @abc.abstractmethod
    def liveness(self, deployment: Deployment) -> Liveness:
        """Whether the deployment's server process still runs."""

    def startup_failure(self, deployment: Deployment) -> str | None:
        """While waiting for health: why the server will never come up, or None."""
        liveness = self.liveness(deployment)
        return None if liveness.alive else liveness.reason

    @abc.abstractmethod
    def logs(self, deployment: Deployment, lines: int = 40) -> str:
        """The last lines of the server's output, for error messages."""

    @abc.abstractmethod
    def stop(self, deployment: Deployment, *, drain_seconds: float) -> None:
        """Drain in-flight requests (up to ``drain_seconds``), then stop; idempotent."""
