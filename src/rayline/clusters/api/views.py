"""Turn table rows into wire schemas, and query strings into filters."""

from __future__ import annotations

from fastapi import HTTPException, status

from rayline.clusters.schemas import (
    ClusterEventPublic,
    ClusterPublic,
    NodePublic,
    ServicePublic,
)
from rayline.metadata.models import Cluster, ClusterEvent, ServiceEndpoint

__all__ = ["cluster_public", "event_public", "parse_labels", "service_public"]


def cluster_public(cluster: Cluster) -> ClusterPublic:
    """The API view of a cluster row."""
    return ClusterPublic(
        id=cluster.id,
        name=cluster.name,
        purpose=cluster.purpose,
        state=cluster.state,
        reason=cluster.state_reason,
        backend=cluster.backend,
        head_address=cluster.head_address,
        dashboard_url=cluster.dashboard_url,
        job_api_url=cluster.job_api_url,
        nodes=[NodePublic.model_validate(n) for n in cluster.nodes or []],
        worker_count=int(cluster.spec.get("worker_count", 0)),
        labels=cluster.labels or {},
        ttl_seconds=cluster.ttl_seconds or 0,
        idle_timeout_seconds=cluster.idle_timeout_seconds,
        request_id=cluster.request_id,
        owner=cluster.owner,
        pool=cluster.pool,
        created_at=cluster.created_at,
        updated_at=cluster.updated_at,
        ready_at=cluster.ready_at,
        adopted_at=cluster.adopted_at,
        terminated_at=cluster.terminated_at,
    )


def event_public(event: ClusterEvent) -> ClusterEventPublic:
    """The API view of a cluster event row."""
    return ClusterEventPublic(
        from_state=event.from_state,
        to_state=event.to_state,
        reason=event.reason,
        created_at=event.created_at,
    )


def service_public(endpoint: ServiceEndpoint) -> ServicePublic:
    """The API view of a service endpoint row."""
    return ServicePublic(
        id=endpoint.id,
        model_name=endpoint.model_name,
        model_version=endpoint.model_version,
        url=endpoint.url,
        cluster_id=endpoint.cluster_id,
        deployment_id=endpoint.deployment_id,
        health=str(endpoint.health),
        registered_at=endpoint.registered_at,
        last_checked_at=endpoint.last_checked_at,
    )


def parse_labels(raw: list[str] | None) -> dict[str, str] | None:
    """Parse repeated `label=key=value` query parameters (422 on a malformed one)."""
    if not raw:
        return None
    labels: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"label filter {item!r} must look like key=value",
            )
        labels[key] = value
    return labels
