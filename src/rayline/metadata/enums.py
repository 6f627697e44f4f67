"""String enums stored in the metadata tables, and the cluster lifecycle rules.

They are stored as plain strings (not native database enums) so SQLite and
Postgres hold the same schema and a new member needs no migration.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CLUSTER_TRANSITIONS",
    "ClusterPurpose",
    "ClusterState",
    "DeploymentMode",
    "DeploymentStatus",
    "EndpointHealth",
    "ModelVersionStatus",
    "WorkflowStatus",
]


class ClusterPurpose(StrEnum):
    """What a Ray cluster is for."""

    TRAINING = "training"
    SERVING = "serving"


class ClusterState(StrEnum):
    """Where a cluster is in its lifecycle."""

    PENDING = "PENDING"
    PROVISIONING = "PROVISIONING"
    READY = "READY"
    # Warm in a cluster pool, never used: a matching request adopts it (-> READY).
    POOLED = "POOLED"
    UNHEALTHY = "UNHEALTHY"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"

    def is_terminal(self) -> bool:
        """Return True when no further transition is allowed."""
        return not CLUSTER_TRANSITIONS[self]

    def can_become(self, target: ClusterState) -> bool:
        """Return True when the lifecycle allows moving from this state to ``target``."""
        return target in CLUSTER_TRANSITIONS[self]


_S = ClusterState

# PENDING -> PROVISIONING -> READY <-> UNHEALTHY -> TERMINATING -> TERMINATED,
# FAILED from any live state. A cluster started for a warm pool goes PROVISIONING
# -> POOLED, and POOLED -> READY once when a request adopts it; nothing goes back
# to POOLED, so a cluster somebody used is never handed out again. PENDING and
# PROVISIONING may also go straight to TERMINATING: a delete request during
# provisioning must still release whatever the backend already started.
CLUSTER_TRANSITIONS: dict[ClusterState, frozenset[ClusterState]] = {
    _S.PENDING: frozenset({_S.PROVISIONING, _S.TERMINATING, _S.FAILED}),
    _S.PROVISIONING: frozenset({_S.READY, _S.POOLED, _S.TERMINATING, _S.FAILED}),
    _S.POOLED: frozenset({_S.READY, _S.TERMINATING, _S.FAILED}),
    _S.READY: frozenset({_S.UNHEALTHY, _S.TERMINATING, _S.FAILED}),
    _S.UNHEALTHY: frozenset({_S.READY, _S.TERMINATING, _S.FAILED}),
    _S.TERMINATING: frozenset({_S.TERMINATED, _S.FAILED}),
    _S.TERMINATED: frozenset(),
    _S.FAILED: frozenset(),
}


class WorkflowStatus(StrEnum):
    """Status of a workflow run or one of its steps."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class ModelVersionStatus(StrEnum):
    """Whether a registered model version can be used."""

    READY = "READY"
    DELETED = "DELETED"


class DeploymentStatus(StrEnum):
    """Where a model deployment is in its lifecycle."""

    PENDING = "PENDING"
    STARTING = "STARTING"
    LIVE = "LIVE"
    DRAINING = "DRAINING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class DeploymentMode(StrEnum):
    """How a model is served."""

    DOCKER = "docker"
    RAY = "ray"


class EndpointHealth(StrEnum):
    """Last known health of a service endpoint."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
