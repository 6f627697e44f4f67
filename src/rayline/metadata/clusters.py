"""Record cluster state transitions, following the lifecycle in :mod:`.enums`."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rayline.metadata.db import open_session
from rayline.metadata.enums import CLUSTER_TRANSITIONS, ClusterState
from rayline.metadata.errors import ClusterNotFoundError, InvalidTransitionError
from rayline.metadata.models import Cluster, ClusterEvent
from rayline.metadata.types import utcnow

__all__ = ["record_transition"]

_ENDED = (ClusterState.TERMINATED, ClusterState.FAILED)


def record_transition(
    bind: Session | Engine, cluster: Cluster | str, to_state: ClusterState, reason: str
) -> Cluster:
    """Move a cluster to ``to_state`` and write the matching ``cluster_events`` row.

    The cluster row is locked and re-read first, so two actors racing to move
    the same cluster (say, the reaper and a delete request) cannot both win:
    the second sees the first one's state and is refused if the lifecycle
    forbids its move.

    Args:
        bind: session to work in, or engine to open and commit one.
        cluster: the cluster or its id.
        to_state: the new state.
        reason: why, for the audit trail (shown as ``state_reason``).

    Returns:
        The updated cluster.

    Raises:
        ClusterNotFoundError: no cluster has this id.
        InvalidTransitionError: the lifecycle forbids this move.
    """
    cluster_id = cluster if isinstance(cluster, str) else cluster.id
    with open_session(bind) as session:
        row = session.scalars(
            select(Cluster)
            .where(Cluster.id == cluster_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:
            raise ClusterNotFoundError(cluster_id)
        from_state = row.state
        if to_state is ClusterState.POOLED and row.adopted_at is not None:
            # Adopted while it was starting: it is somebody's now, never a spare.
            to_state = ClusterState.READY
        if not from_state.can_become(to_state):
            allowed = sorted(s.value for s in CLUSTER_TRANSITIONS[from_state])
            raise InvalidTransitionError(cluster_id, from_state.value, to_state.value, allowed)
        now = utcnow()
        row.state = to_state
        row.state_reason = reason
        row.updated_at = now
        if to_state is ClusterState.READY and row.ready_at is None:
            row.ready_at = now
        if to_state in _ENDED:
            row.terminated_at = now
        session.add(
            ClusterEvent(
                cluster_id=cluster_id,
                from_state=from_state,
                to_state=to_state,
                reason=reason,
                created_at=now,
            )
        )
        return row
