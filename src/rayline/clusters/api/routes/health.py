"""`/healthz` (open) and `/metrics` (token required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rayline import __version__
from rayline.clusters.api.deps import Authorized, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(runtime: RuntimeDep) -> dict[str, Any]:
    """Liveness: the manager answers and reaches its metadata store.

    ``coordination`` says whether this replica leads and whether ZooKeeper is
    reachable; ``status`` is ``degraded`` (still 200: reads work) when it is not.
    """
    runtime.service.counts_by_state()
    coordination = runtime.coordinator.status()
    return {
        "status": "degraded" if coordination["degraded"] else "ok",
        "version": __version__,
        "backend": runtime.backend.name,
        "coordination": coordination,
    }


@router.get("/metrics", dependencies=[Authorized])
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus exposition of the manager's metrics."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
