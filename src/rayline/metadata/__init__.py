"""The metadata store: what happened to every cluster, run, model and deployment.

SQLAlchemy 2 models and Alembic migrations that work the same on SQLite (the
embedded default) and Postgres (the full stack), plus the few operations that
need care under concurrency: version numbering, cluster transitions and
workflow bookkeeping.

Example:
    >>> from rayline.metadata import ModelRegistry, create_engine_for, upgrade
    >>> upgrade("sqlite:///rayline.db")  # doctest: +SKIP
    >>> engine = create_engine_for("sqlite:///rayline.db")  # doctest: +SKIP
    >>> ModelRegistry().register_version(  # doctest: +SKIP
    ...     engine, name="iris", artifact_uri="s3://models/iris/1", sha256="..."
    ... ).version
    1
"""

from rayline.metadata.clusters import record_transition
from rayline.metadata.db import create_engine_for, create_session_factory, session_scope
from rayline.metadata.enums import (
    ClusterPurpose,
    ClusterState,
    DeploymentMode,
    DeploymentStatus,
    EndpointHealth,
    ModelVersionStatus,
    WorkflowStatus,
)
from rayline.metadata.errors import (
    AliasNotFoundError,
    ClusterNotFoundError,
    InvalidTransitionError,
    MetadataError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    NotFoundError,
    UnsupportedDatabaseError,
    WorkflowRunNotFoundError,
    WorkflowStepNotFoundError,
)
from rayline.metadata.migrate import current_revision, upgrade
from rayline.metadata.models import (
    Base,
    Cluster,
    ClusterEvent,
    Deployment,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    ServiceEndpoint,
    WorkflowRun,
    WorkflowStep,
)
from rayline.metadata.registry import ModelRegistry
from rayline.metadata.workflows import finish_run, finish_step, start_run, start_step

__all__ = [
    "AliasNotFoundError",
    "Base",
    "Cluster",
    "ClusterEvent",
    "ClusterNotFoundError",
    "ClusterPurpose",
    "ClusterState",
    "Deployment",
    "DeploymentMode",
    "DeploymentStatus",
    "EndpointHealth",
    "InvalidTransitionError",
    "MetadataError",
    "ModelAlias",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "ModelVersionStatus",
    "NotFoundError",
    "RegisteredModel",
    "ServiceEndpoint",
    "UnsupportedDatabaseError",
    "WorkflowRun",
    "WorkflowRunNotFoundError",
    "WorkflowStatus",
    "WorkflowStep",
    "WorkflowStepNotFoundError",
    "create_engine_for",
    "create_session_factory",
    "current_revision",
    "finish_run",
    "finish_step",
    "record_transition",
    "session_scope",
    "start_run",
    "start_step",
    "upgrade",
]
