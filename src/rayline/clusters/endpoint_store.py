"""The serving endpoints' rows: register, list, deregister, and the clusters behind them.

Service discovery for models: an endpoint is a model version's URL, with the
serving cluster and deployment behind it. Each function runs in the caller's
session; `ClusterService` holds the per-model lock and tells its listeners of
a change once the transaction committed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rayline.clusters.errors import (
    ClusterNotFoundError,
    EndpointMismatchError,
    UnknownModelVersionError,
)
from rayline.clusters.schemas import ServiceCreate
from rayline.metadata.enums import EndpointHealth
from rayline.metadata.models import Cluster, Deployment, ModelVersion, ServiceEndpoint
from rayline.metadata.types import utcnow

__all__ = ["backing_cluster_ids", "deregister", "list_endpoints", "register"]


def register(session: Session, spec: ServiceCreate) -> ServiceEndpoint:
    """Register (or replace, by URL) a serving endpoint.

    An endpoint cannot vouch for itself: its deployment must be of the same model
    version and on the named cluster, and its URL must be on that cluster's head
    host; a token holder cannot point a model's discovery at some other server.

    Raises:
        UnknownModelVersionError: the model version (or the deployment) is not registered.
        ClusterNotFoundError: the backing cluster does not exist.
        EndpointMismatchError: the deployment, cluster and URL do not belong together.
    """
    version = session.scalar(
        select(ModelVersion.id).where(
            ModelVersion.model_name == spec.model_name,
            ModelVersion.version == spec.model_version,
        )
    )
    if version is None:
        raise UnknownModelVersionError(spec.model_name, spec.model_version)
    cluster_id = _check_deployment(session, spec)
    if cluster_id is not None:
        cluster = session.get(Cluster, cluster_id)
        if cluster is None:
            raise ClusterNotFoundError(cluster_id)
        _check_url_on_cluster(spec.url, cluster)
    endpoint = session.scalar(select(ServiceEndpoint).where(ServiceEndpoint.url == spec.url))
    if endpoint is None:
        endpoint = ServiceEndpoint(url=spec.url)
        session.add(endpoint)
    endpoint.model_name = spec.model_name
    endpoint.model_version = spec.model_version
    endpoint.cluster_id = cluster_id
    endpoint.deployment_id = spec.deployment_id
    endpoint.health = EndpointHealth.UNKNOWN  # until something checks it
    endpoint.registered_at = utcnow()
    try:
        session.flush()
    except IntegrityError as exc:  # e.g. a deployment id that does not exist
        raise UnknownModelVersionError(
            spec.model_name, spec.model_version, detail=str(exc.orig)
        ) from exc
    return endpoint


def _check_deployment(session: Session, spec: ServiceCreate) -> str | None:
    """The backing cluster's id: the request's, which must be its deployment's."""
    if spec.deployment_id is None:
        return spec.cluster_id
    deployment = session.get(Deployment, spec.deployment_id)
    if deployment is None:
        raise UnknownModelVersionError(
            spec.model_name, spec.model_version, detail=f"no deployment {spec.deployment_id!r}"
        )
    if (deployment.model_name, deployment.model_version) != (spec.model_name, spec.model_version):
        raise EndpointMismatchError(
            "deployment_id",
            f"deployment {deployment.id} serves {deployment.model_name} version "
            f"{deployment.model_version}, not {spec.model_name} version {spec.model_version}",
        )
    if spec.cluster_id is not None and spec.cluster_id != deployment.cluster_id:
        raise EndpointMismatchError(
            "cluster_id",
            f"deployment {deployment.id} runs on cluster {deployment.cluster_id}, "
            f"not {spec.cluster_id}",
        )
    return deployment.cluster_id


def _check_url_on_cluster(url: str, cluster: Cluster) -> None:
    if cluster.state.is_terminal():
        raise EndpointMismatchError(
            "cluster_id", f"cluster {cluster.id} is {cluster.state.value}: nothing serves there"
        )
    if cluster.head_address is None:
        raise EndpointMismatchError("cluster_id", f"cluster {cluster.id} is not READY yet")
    head_host = urlsplit(f"//{cluster.head_address}").hostname
    if urlsplit(url).hostname != head_host:
        raise EndpointMismatchError(
            "url", f"{url} is not on cluster {cluster.id}'s host {head_host}"
        )


def list_endpoints(
    session: Session, model: str | None = None, *, limit: int = 1000, offset: int = 0
) -> list[ServiceEndpoint]:
    """Registered endpoints, optionally of one model, newest version first."""
    query = (
        select(ServiceEndpoint)
        .order_by(
            ServiceEndpoint.model_name,
            ServiceEndpoint.model_version.desc(),
            ServiceEndpoint.id,
        )
        .limit(limit)
        .offset(offset)
    )
    if model is not None:
        query = query.where(ServiceEndpoint.model_name == model)
    return list(session.scalars(query))


def deregister(session: Session, service_id: int) -> bool:
    """Remove an endpoint; False when it was already gone."""
    endpoint = session.get(ServiceEndpoint, service_id)
    if endpoint is None:
        return False
    session.delete(endpoint)
    return True


def backing_cluster_ids(session: Session) -> set[str]:
    """Ids of clusters that back a registered, not-unhealthy endpoint."""
    rows = session.scalars(
        select(ServiceEndpoint.cluster_id).where(
            ServiceEndpoint.cluster_id.is_not(None),
            ServiceEndpoint.health != EndpointHealth.UNHEALTHY,
        )
    )
    return {r for r in rows if r}
