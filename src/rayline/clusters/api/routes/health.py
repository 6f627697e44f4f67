"""`/healthz` (open) and `/metrics` (token required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rayline import __version__
from rayline.clusters.api.deps import Authorized, CallerIsAuthorized, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(runtime: RuntimeDep, authorized: CallerIsAuthorized) -> dict[str, Any]:
    """Liveness: the manager answers and reaches its metadata store.

    ``status`` is ``degraded`` (still 200: reads work) when ZooKeeper is not
    reachable. Only a caller with the token also gets the details (version,
    backend, ``coordination``: leadership, ZooKeeper connection), which tell an
    attacker what runs and which replica to aim at.
    """
    runtime.service.counts_by_state()
    coordination = runtime.coordinator.status()
    health: dict[str, Any] = {"status": "degraded" if coordination["degraded"] else "ok"}
    if authorized:
        health |= {
            "version": __version__,
            "backend": runtime.backend.name,
            "coordination": coordination,
        }
    return health


@router.get("/metrics", dependencies=[Authorized])
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus exposition of the manager's metrics."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
