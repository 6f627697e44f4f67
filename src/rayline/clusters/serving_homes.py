"""A serving cluster is its model's home: found by model, reaped when it serves nothing.

A serving request labelled ``rayline.model=<name>`` gets that model's live
serving cluster when it has one, so every version of a model is served on one
cluster (and behind its one Serve proxy port). A serving cluster that backs no
active deployment, no registered endpoint and no running job for
``serving_idle_seconds`` is ended by the lifecycle loop: nothing it hosted is
used any more, and an idle Ray head still holds about 1 GB and some CPU.

Each function runs in the caller's session; `ClusterService` holds the create
locks around `find_home` and `LifecycleManager` acts on `serving_idle_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rayline.clusters import endpoint_store
from rayline.clusters.schemas import ClusterCreate
from rayline.metadata.enums import ClusterPurpose, ClusterState, DeploymentStatus
from rayline.metadata.models import Cluster, Deployment

if TYPE_CHECKING:  # only the annotation: the DAG's operators import MODEL_LABEL from here
    from rayline.clusters.backends.base import Activity

__all__ = [
    "MODEL_LABEL",
    "ServingUse",
    "find_home",
    "model_of",
    "serving_idle_reason",
    "serving_use",
]

#: The label naming the model a serving cluster is the home of.
MODEL_LABEL = "rayline.model"

# Deployments that hold (or are about to hold) replicas on their cluster.
_ACTIVE = (
    DeploymentStatus.PENDING,
    DeploymentStatus.STARTING,
    DeploymentStatus.LIVE,
    DeploymentStatus.DRAINING,
)
# A home that is up first; one still starting beats starting a second one.
_HOME_STATES = (ClusterState.READY, ClusterState.PROVISIONING, ClusterState.PENDING)


def model_of(spec: ClusterCreate) -> str | None:
    """The model a serving request is for, or None (not serving, or no model label)."""
    if spec.purpose != ClusterPurpose.SERVING:
        return None
    return spec.labels.get(MODEL_LABEL) or None


def find_home(session: Session, spec: ClusterCreate) -> Cluster | None:
    """The live serving cluster of the request's model, or None (then start one).

    READY ones first, then one still starting; the oldest of them, so two homes
    made by concurrent first deployments converge on one (the reaper ends the
    other once it serves nothing).
    """
    model = model_of(spec)
    if model is None:
        return None
    candidates = session.scalars(
        select(Cluster)
        .where(Cluster.purpose == ClusterPurpose.SERVING, Cluster.state.in_(_HOME_STATES))
        .order_by((Cluster.state == ClusterState.READY).desc(), Cluster.created_at, Cluster.id)
    )
    # Label filters run in Python: JSON containment differs between SQLite and Postgres.
    return next((c for c in candidates if c.labels.get(MODEL_LABEL) == model), None)


@dataclass(frozen=True)
class ServingUse:
    """What the serving clusters back, read once per lifecycle pass.

    Attributes:
        backed: Ids of clusters with an active deployment or a registered,
            not-unhealthy endpoint.
        last_change: Per cluster, when one of its deployments last changed
            (e.g. was stopped): its idle time counts from then.
    """

    backed: set[str] = field(default_factory=set)
    last_change: dict[str, datetime] = field(default_factory=dict)


def serving_use(session: Session) -> ServingUse:
    """Read which clusters back deployments or endpoints, and their last deployment change."""
    active = session.scalars(
        select(Deployment.cluster_id).where(
            Deployment.cluster_id.is_not(None), Deployment.status.in_(_ACTIVE)
        )
    )
    changed = session.execute(
        select(Deployment.cluster_id, func.max(Deployment.updated_at))
        .where(Deployment.cluster_id.is_not(None))
        .group_by(Deployment.cluster_id)
    )
    return ServingUse(
        backed={c for c in active if c} | endpoint_store.backing_cluster_ids(session),
        last_change={c: at for c, at in changed if c and at},
    )


def idle_since(cluster: Cluster, use: ServingUse) -> datetime:
    """Since when a serving cluster has backed nothing (as far as the records tell)."""
    start = cluster.adopted_at or cluster.ready_at or cluster.created_at
    marks = [start, cluster.last_active_at, use.last_change.get(cluster.id)]
    return max(m for m in marks if m is not None)


def serving_idle_reason(
    cluster: Cluster,
    use: ServingUse,
    *,
    now: datetime,
    limit_seconds: float,
    activity: Activity | None = None,
) -> str | None:
    """Why a serving cluster is to be reaped, or None to keep it.

    Kept: a cluster that is not a READY serving one, one that backs something
    in ``use``, one idle for less than ``limit_seconds``, and one whose
    ``activity`` shows a job running or queued (or could not be read). Pass
    ``activity`` only once the records say it is reapable: reading it costs a
    call to the cluster. A Serve application alone does not keep it: with no
    active deployment it is a leftover nobody can reach through the manager.
    """
    if cluster.purpose != ClusterPurpose.SERVING or cluster.state != ClusterState.READY:
        return None
    if cluster.id in use.backed:
        return None
    idle_for = (now - idle_since(cluster, use)).total_seconds()
    if idle_for < limit_seconds:
        return None
    if activity is not None and (activity.error or activity.running_jobs or activity.pending_jobs):
        return None
    return (
        f"serving cluster backs no live deployment, endpoint or job for {idle_for:.0f}s "
        f"(RAYLINE_SERVING_IDLE_SECONDS={limit_seconds:g})"
    )
