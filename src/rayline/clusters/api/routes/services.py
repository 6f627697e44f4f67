"""`/v1/services`: serve-service discovery of model endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from rayline.clusters.api.deps import Authorized, RuntimeDep
from rayline.clusters.api.views import service_public
from rayline.clusters.schemas import (
    MODEL_NAME_PATTERN,
    ServiceCreate,
    ServicePublic,
    ServicesPublic,
)

ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, max_length=128)]
ServiceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")]

router = APIRouter(prefix="/v1/services", tags=["services"], dependencies=[Authorized])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ServicePublic)
def register_service(spec: ServiceCreate, runtime: RuntimeDep) -> ServicePublic:
    """Register a serving endpoint (registering a URL again replaces it)."""
    return service_public(runtime.service.register_service(spec))


@router.get("", response_model=ServicesPublic)
def list_services(
    runtime: RuntimeDep,
    model: Annotated[str | None, Query(pattern=MODEL_NAME_PATTERN, max_length=128)] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> ServicesPublic:
    """Registered endpoints, optionally of one model, one page at a time."""
    rows = runtime.service.list_services(model, limit=limit, offset=offset)
    return ServicesPublic(data=[service_public(s) for s in rows], count=len(rows))


@router.get("/{model}", response_model=ServicesPublic)
def live_endpoints(
    model: ModelName, runtime: RuntimeDep, limit: Limit = 200, offset: Offset = 0
) -> ServicesPublic:
    """The live (not unhealthy) endpoints of one model; 404 when there is none."""
    listed = runtime.service.list_services(model, limit=limit, offset=offset)
    rows = [s for s in listed if s.health != "unhealthy"]
    if not rows:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no live endpoint for model {model!r}; deploy it with `rayline deploy {model}`",
        )
    return ServicesPublic(data=[service_public(s) for s in rows], count=len(rows))


@router.delete("/{service_id}", status_code=status.HTTP_204_NO_CONTENT)
def deregister_service(service_id: ServiceId, runtime: RuntimeDep) -> Response:
    """Remove an endpoint; removing one that is gone changes nothing."""
    runtime.service.deregister_service(service_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
