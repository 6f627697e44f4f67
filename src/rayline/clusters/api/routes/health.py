"""`/healthz` (open) and `/metrics` (token required)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rayline import __version__
from rayline.clusters.api.deps import Authorized, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(runtime: RuntimeDep) -> dict[str, str]:
    """Liveness: the manager answers and reaches its metadata store."""
    runtime.service.counts_by_state()
    return {"status": "ok", "version": __version__, "backend": runtime.backend.name}


@router.get("/metrics", dependencies=[Authorized])
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus exposition of the manager's metrics."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
