"""`/v1/clusters`: request, list, inspect, wait on and delete Ray clusters."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from rayline.clusters.api.deps import Authorized, LongPollsDep, RuntimeDep, WaiterDep
from rayline.clusters.api.views import cluster_public, event_public, parse_labels
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterEventPublic,
    ClusterPublic,
    ClustersPublic,
    ClusterState,
    Purpose,
)

ClusterId = Annotated[str, Path(min_length=1, max_length=64)]

router = APIRouter(prefix="/v1/clusters", tags=["clusters"], dependencies=[Authorized])

MAX_WAIT_SECONDS = 60.0

log = logging.getLogger(__name__)


#: Labels only the manager writes (a pooled cluster's pool).
RESERVED_LABELS = frozenset({"rayline.pool"})


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ClusterPublic)
def create_cluster(spec: ClusterCreate, runtime: RuntimeDep, response: Response) -> ClusterPublic:
    """Request a cluster: adopted from a warm pool when one has its shape, else started.

    The same `request_id` returns the same cluster. Labels the manager sets itself
    (``rayline.pool``) cannot be given: they would mislead the audit trail.
    """
    if reserved := sorted(RESERVED_LABELS & spec.labels.keys()):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "labels", key],
                    "msg": f"label {key!r} is set by the Cluster Manager, not by requests",
                    "type": "value_error",
                }
                for key in reserved
            ],
        )
    cluster, created = runtime.service.create(spec, backend=runtime.backend.name)
    if created and cluster.state == ClusterState.PENDING:  # (adopted ones are up or starting)
        runtime.provisioner.provision(cluster.id)
    response.headers["Location"] = f"{router.prefix}/{cluster.id}"
    return cluster_public(cluster)


@router.get("", response_model=ClustersPublic)
def list_clusters(
    runtime: RuntimeDep,
    purpose: Purpose | None = None,
    state: ClusterState | None = None,
    label: Annotated[list[str] | None, Query(description="key=value, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 200,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="clusters to skip")] = 0,
) -> ClustersPublic:
    """List clusters, newest first, one page at a time."""
    rows = runtime.service.list_clusters(
        purpose=purpose, state=state, labels=parse_labels(label), limit=limit, offset=offset
    )
    return ClustersPublic(data=[cluster_public(c) for c in rows], count=len(rows))


@router.get("/{cluster_id}", response_model=ClusterPublic)
def get_cluster(cluster_id: ClusterId, runtime: RuntimeDep) -> ClusterPublic:
    """One cluster: state, reason, addresses, nodes, timestamps."""
    return cluster_public(runtime.service.get(cluster_id))


@router.get("/{cluster_id}/credentials", response_model=ClusterCredentials)
def cluster_credentials(
    cluster_id: ClusterId, runtime: RuntimeDep, response: Response
) -> ClusterCredentials:
    """The cluster's Ray auth token, for clients of its dashboard and Jobs API (secret)."""
    cluster = runtime.service.get(cluster_id)
    if not cluster.backend_handle:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"cluster {cluster_id} is {cluster.state.value}: it has no Ray processes yet; "
            "wait until it is READY",
        )
    handle = runtime.backend.load_handle(cluster.backend_handle)
    path = runtime.backend.auth_token_path(cluster_id)
    response.headers["Cache-Control"] = "no-store"
    log.info("credentials of cluster %s handed out", cluster_id)
    return ClusterCredentials(
        cluster_id=cluster_id,
        ray_auth_token=runtime.backend.auth_token(handle),
        ray_auth_token_path=str(path) if path is not None else None,
    )


@router.get("/{cluster_id}/events", response_model=list[ClusterEventPublic])
def cluster_events(
    cluster_id: ClusterId,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="events to skip")] = 0,
) -> list[ClusterEventPublic]:
    """The cluster's state transitions, oldest first, one page at a time."""
    rows = runtime.service.events(cluster_id, limit=limit, offset=offset)
    return [event_public(e) for e in rows]


@router.delete("/{cluster_id}", status_code=status.HTTP_202_ACCEPTED, response_model=ClusterPublic)
def delete_cluster(cluster_id: ClusterId, runtime: RuntimeDep) -> ClusterPublic:
    """Terminate a cluster; deleting one that is already ending changes nothing."""
    cluster, started = runtime.service.request_termination(cluster_id, "deleted through the API")
    if started:
        runtime.provisioner.terminate(cluster.id)
    return cluster_public(cluster)


@router.post("/{cluster_id}/wait", response_model=ClusterPublic)
async def wait_for_cluster(
    cluster_id: ClusterId,
    polls: LongPollsDep,
    waiter: WaiterDep,
    state: ClusterState = ClusterState.READY,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 30.0,
) -> ClusterPublic:
    """Long-poll: answer once the cluster is in `state`, has ended, or `timeout` passed.

    Waits on the event loop, not a worker thread; a client may hold only a few at
    once (429 beyond, RAYLINE_API_MAX_WAITS_PER_CLIENT).
    """
    if state == ClusterState.PENDING:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "cannot wait for PENDING")
    with polls.slot(waiter):
        return cluster_public(await polls.wait_for(cluster_id, state, timeout))
