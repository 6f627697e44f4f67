"""Watch live deployments: one whose server died is marked FAILED and withdrawn.

:func:`check_deployments` looks once (tests drive it directly);
:func:`watch_deployments` repeats it until told to stop (``rayline deployments
watch``). A dead Docker container is noticed from the engine; a Serve app on
a cluster from its ``/healthz`` no longer answering.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from rayline.clusters.errors import NotFoundError as ManagerNotFoundError
from rayline.metadata import DeploymentMode, DeploymentStatus
from rayline.serving import records
from rayline.serving.errors import ServingError
from rayline.serving.runtimes import ServingRuntime, get_runtime

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings

__all__ = ["Failure", "check_deployments", "watch_deployments"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A deployment found dead, and why."""

    deployment_id: str
    model: str
    version: int
    reason: str


def check_deployments(
    *,
    settings: Settings,
    engine: Engine,
    manager: ClusterManagerClient,
    runtimes: dict[DeploymentMode, ServingRuntime] | None = None,
) -> list[Failure]:
    """Check every LIVE deployment once; mark the dead ones FAILED and withdraw them.

    Args:
        settings: For the runtimes.
        engine: The metadata store.
        manager: Service discovery, to withdraw endpoints.
        runtimes: Runtimes by mode (created from ``settings`` when missing).

    Returns:
        The deployments found dead in this pass.
    """
    runtimes = dict(runtimes or {})
    failures = []
    for row in records.list_deployments(engine, statuses=(DeploymentStatus.LIVE,)):
        runtime = runtimes.setdefault(row.mode, get_runtime(row.mode, settings))
        liveness = runtime.liveness(row)
        if liveness.alive:
            continue
        logs = runtime.logs(row)
        detail = f"server died: {liveness.reason}" + (
            f"\n--- server output ---\n{logs}" if logs else ""
        )
        records.update_deployment(
            engine, row.id, status=DeploymentStatus.FAILED, error=detail[-4000:]
        )
        _withdraw(manager, row.model_name, row.id)
        try:
            # Release what the dead server still holds (container, ports).
            runtime.stop(row, drain_seconds=0)
        except ServingError as err:
            log.warning("could not clean up after %s: %s", row.id, err)
        log.warning(
            "deployment %s (%s v%s) FAILED: %s",
            row.id,
            row.model_name,
            row.model_version,
            liveness.reason,
        )
        failures.append(Failure(row.id, row.model_name, row.model_version, liveness.reason))
    return failures


def watch_deployments(
    *,
    settings: Settings,
    engine: Engine,
    manager: ClusterManagerClient,
    interval: float = 5.0,
    stop: threading.Event | None = None,
    on_failure: Callable[[Failure], None] | None = None,
) -> None:
    """Run :func:`check_deployments` every ``interval`` seconds until ``stop`` is set."""
    stop = stop or threading.Event()
    runtimes: dict[DeploymentMode, ServingRuntime] = {}
    while not stop.is_set():
        for failure in check_deployments(
            settings=settings, engine=engine, manager=manager, runtimes=runtimes
        ):
            if on_failure is not None:
                on_failure(failure)
        stop.wait(interval)


def _withdraw(manager: ClusterManagerClient, model: str, deployment_id: str) -> None:
    for service in manager.list_services(model).data:
        if service.deployment_id == deployment_id:
            with contextlib.suppress(ManagerNotFoundError):
                manager.deregister_service(service.id)
