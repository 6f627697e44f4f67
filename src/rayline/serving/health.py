"""Deployment health: wait for a new server to answer, watch the live ones.

:func:`wait_until_healthy` polls a starting server until it answers for its
deployment. A live deployment whose server died is marked FAILED and withdrawn:
:func:`check_deployments` looks once (tests drive it directly);
:func:`watch_deployments` repeats it until told to stop (``rayline deployments
watch``). A dead Docker container is noticed from the engine; a Serve app on
a cluster from its ``/healthz`` no longer answering.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Engine

from rayline.clusters.errors import NotFoundError as ManagerNotFoundError
from rayline.metadata import DeploymentMode, DeploymentStatus
from rayline.serving import records
from rayline.serving.errors import DeploymentFailedError, ServingError
from rayline.serving.runtimes import ServingRuntime, get_runtime

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings

__all__ = [
    "Failure",
    "check_deployments",
    "wait_until_healthy",
    "watch_deployments",
    "withdraw_endpoints",
]

log = logging.getLogger(__name__)


def wait_until_healthy(
    url: str,
    *,
    deployment_id: str,
    timeout: float,
    still_running: Callable[[], str | None],
) -> None:
    """Poll ``url/healthz`` until this deployment answers it.

    Args:
        url: The endpoint's base URL.
        deployment_id: The answer must name it (another server may hold the port).
        timeout: Seconds to wait.
        still_running: Returns why the server is gone, or None while it runs.

    Raises:
        DeploymentFailedError: The server died or did not answer in time.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        gone = still_running()
        if gone:
            raise DeploymentFailedError(f"the server stopped before it became healthy: {gone}")
        try:
            response = httpx.get(f"{url}/healthz", timeout=5)
            if (
                response.status_code == 200
                and response.json().get("deployment_id") == deployment_id
            ):
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except (httpx.HTTPError, ValueError) as err:
            last = f"{type(err).__name__}"
        time.sleep(0.5)
    raise DeploymentFailedError(
        f"{url}/healthz did not answer within {timeout:.0f}s (last: {last}); raise "
        "RAYLINE_SERVING_START_TIMEOUT_SECONDS if the machine is slow"
    )


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
        withdraw_endpoints(manager, row.model_name, row.id)
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


def withdraw_endpoints(manager: ClusterManagerClient, model: str, deployment_id: str) -> list[str]:
    """Deregister every endpoint of one deployment from service discovery.

    Returns:
        The URLs withdrawn (one already gone counts as withdrawn).
    """
    withdrawn = []
    for service in manager.list_services(model).data:
        if service.deployment_id == deployment_id:
            with contextlib.suppress(ManagerNotFoundError):
                manager.deregister_service(service.id)
            withdrawn.append(service.url)
    return withdrawn
