"""Release the serving clusters that superseded deployments leave backing nothing.

When a new version goes LIVE on another cluster than the one it replaces (a
model's first deploy on its own home cluster, or a deploy that named another
cluster), the old cluster would otherwise idle on until its TTL. It is
terminated once no active deployment of any model is on it; the Cluster
Manager's lifecycle loop catches what this misses (a release that failed, a
deployment deleted) after ``RAYLINE_SERVING_IDLE_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from rayline.clusters.errors import ClusterManagerError
from rayline.metadata import Deployment
from rayline.serving import records

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient

__all__ = ["release_unused_clusters"]


def release_unused_clusters(
    engine: Engine,
    manager: ClusterManagerClient,
    superseded: Iterable[Deployment],
    *,
    keep: str | None,
    progress: Callable[[str], None],
) -> list[str]:
    """Terminate the serving clusters of ``superseded`` that no active deployment uses.

    Args:
        engine: The metadata store.
        manager: Client of the Cluster Manager.
        superseded: The deployments just stopped.
        keep: The cluster the new deployment (and this job) runs on: never released.
        progress: Called with one line per cluster released or kept.

    Returns:
        The ids of the clusters whose termination was asked for. A failure to ask
        is reported through ``progress`` only: the new version is LIVE, and the
        manager's lifecycle loop reaps the cluster later.
    """
    candidates = {row.cluster_id for row in superseded} - {keep, None}
    if not candidates:
        return []
    in_use = {row.cluster_id for row in records.list_deployments(engine, statuses=records.ACTIVE)}
    released = []
    for cluster_id in sorted(c for c in candidates if c is not None):
        if cluster_id in in_use:
            progress(f"serving cluster {cluster_id} kept: other deployments run there")
            continue
        try:
            manager.delete_cluster(cluster_id)
        except ClusterManagerError as err:
            progress(f"serving cluster {cluster_id} not released ({err}); the manager reaps it")
            continue
        progress(f"serving cluster {cluster_id} released: it backs no live deployment")
        released.append(cluster_id)
    return released
