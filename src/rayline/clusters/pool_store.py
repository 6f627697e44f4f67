"""The pool's rows: start pooled clusters, hand one over, evict, drain, count.

Every write here runs inside `ClusterService.creating()`, the transaction that
holds the create locks (this process, the ZooKeeper quota lock with several
replicas, and a Postgres advisory lock), so quota checks and hand-overs never
interleave. The hand-over itself is also a conditional UPDATE (``... WHERE
adopted_at IS NULL``, one row or none): even a writer that skipped the locks
could not hand the same pooled cluster to two requests.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from rayline.clusters.pools import PoolShape
from rayline.clusters.schemas import ClusterCreate
from rayline.metadata.clusters import record_transition
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster, ClusterEvent
from rayline.metadata.types import utcnow

__all__ = [
    "FRESH_STATES",
    "adopt",
    "count_fresh",
    "drain",
    "evict_one",
    "new_pooled",
    "starting_for_requests",
]

# A pooled cluster nobody adopted yet is in one of these; adoption takes any of them
# (a starting one is as fresh as a warm one, and saves the rest of its start-up).
FRESH_STATES = (ClusterState.PENDING, ClusterState.PROVISIONING, ClusterState.POOLED)


def _fresh(pool: str | None = None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        Cluster.pool.is_not(None),
        Cluster.adopted_at.is_(None),
        Cluster.state.in_(FRESH_STATES),
    ]
    if pool is not None:
        where.append(Cluster.pool == pool)
    return where


def adopt(session: Session, shape: PoolShape, spec: ClusterCreate, *, owner: str) -> Cluster | None:
    """Hand a fresh cluster of ``shape`` to ``spec``'s request, or None when none is free.

    A warm (POOLED) one becomes READY at once; a still-starting one keeps
    provisioning and becomes READY, not POOLED, when it is up. The request's
    name, labels, TTL, idle timeout and request id replace the pool's.
    """
    candidates = session.scalars(
        select(Cluster)
        .where(*_fresh(shape.name))
        # Warm ones first, then the one that started first.
        .order_by((Cluster.state == ClusterState.POOLED).desc(), Cluster.created_at, Cluster.id)
    ).all()
    for candidate in candidates:
        if not shape.matches(ClusterCreate.model_validate(candidate.spec)):
            continue  # started under an older pool setting: never hand out another shape
        if _take(session, candidate, shape, spec, owner=owner):
            return session.get(Cluster, candidate.id, populate_existing=True)
    return None


def _take(
    session: Session, candidate: Cluster, shape: PoolShape, spec: ClusterCreate, *, owner: str
) -> bool:
    now = utcnow()
    warm = candidate.state == ClusterState.POOLED
    reason = (
        f"adopted from warm pool '{shape.name}': no Ray start"
        if warm
        else f"adopted from pool '{shape.name}' while starting; READY when up"
    )
    values: dict[str, object] = {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "labels": {**spec.labels, "rayline.pool": shape.name},
        "request_id": spec.request_id,
        "ttl_seconds": spec.ttl_seconds,
        "idle_timeout_seconds": spec.idle_timeout_seconds,
        "owner": owner,
        "adopted_at": now,
        "last_active_at": now,
        "updated_at": now,
        "state_reason": reason,
    }
    if warm:
        values.update(state=ClusterState.READY, ready_at=now)
    taken = session.execute(
        update(Cluster)
        .where(Cluster.id == candidate.id, *_fresh())
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False  # somebody else's, or it ended, since we read it
    state = ClusterState.READY if warm else candidate.state
    session.add(
        ClusterEvent(
            cluster_id=candidate.id,
            from_state=candidate.state,
            to_state=state,
            reason=reason,
            created_at=now,
        )
    )
    return True


def new_pooled(session: Session, shape: PoolShape, *, backend: str, owner: str) -> Cluster:
    """Record a PENDING cluster started for ``shape``'s pool (quota checked by the caller)."""
    spec = shape.request()
    reason = f"requested by pool '{shape.name}' (refill: keeps {shape.size} warm)"
    cluster = Cluster(
        name=spec.name,
        purpose=spec.purpose,
        state=ClusterState.PENDING,
        state_reason=reason,
        backend=backend,
        spec=spec.model_dump(mode="json"),
        labels=dict(spec.labels),
        ttl_seconds=spec.ttl_seconds,
        nodes=[],
        backend_handle={},
        owner=owner,
        pool=shape.name,
    )
    session.add(cluster)
    session.flush()
    session.add(
        ClusterEvent(
            cluster_id=cluster.id, from_state=None, to_state=ClusterState.PENDING, reason=reason
        )
    )
    return cluster


def evict_one(session: Session, why: str) -> str | None:
    """Move the oldest warm pooled cluster to TERMINATING to free its quota slot."""
    victim: str | None = session.scalar(
        select(Cluster.id)
        .where(*_fresh(), Cluster.state == ClusterState.POOLED)
        .order_by(Cluster.created_at, Cluster.id)
    )
    if victim is None:
        return None
    record_transition(session, victim, ClusterState.TERMINATING, why)
    return victim


def drain(session: Session, why: str, *, owner: str | None = None) -> list[str]:
    """Move every fresh pooled cluster (of ``owner`` if given) to TERMINATING."""
    query = select(Cluster.id).where(*_fresh())
    if owner is not None:
        query = query.where(Cluster.owner == owner)
    ids = list(session.scalars(query.order_by(Cluster.created_at, Cluster.id)))
    for cluster_id in ids:
        record_transition(session, cluster_id, ClusterState.TERMINATING, why)
    return ids


def count_fresh(session: Session, shapes: Sequence[PoolShape]) -> dict[str, int]:
    """Fresh (not adopted, not ended) clusters per pool, including starting ones."""
    rows = session.execute(
        select(Cluster.pool, func.count()).where(*_fresh()).group_by(Cluster.pool)
    )
    counts = {str(pool): int(n) for pool, n in rows}
    return {shape.name: counts.get(shape.name, 0) for shape in shapes}


def starting_for_requests(session: Session) -> int:
    """Clusters a request waits for that are still starting (cold, or adopted mid-start)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Cluster)
            .where(
                Cluster.state.in_((ClusterState.PENDING, ClusterState.PROVISIONING)),
                (Cluster.pool.is_(None)) | (Cluster.adopted_at.is_not(None)),
            )
        )
        or 0
    )
