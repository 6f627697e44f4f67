"""The metadata tables: clusters, workflow runs, models, deployments, endpoints.

Every timestamp is an aware UTC ``datetime`` (see :class:`UTCDateTime`), every
enum a string, every JSON column JSONB on Postgres and JSON text on SQLite.
Rows are kept after a cluster or deployment ends: they are the audit trail.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rayline.metadata.enums import (
    ClusterPurpose,
    ClusterState,
    DeploymentMode,
    DeploymentStatus,
    EndpointHealth,
    ModelVersionStatus,
    WorkflowStatus,
)
from rayline.metadata.types import JSONType, UTCDateTime, str_enum, utcnow

__all__ = [
    "Base",
    "Cluster",
    "ClusterEvent",
    "Deployment",
    "ModelAlias",
    "ModelVersion",
    "RegisteredModel",
    "ServiceEndpoint",
    "WorkflowRun",
    "WorkflowStep",
    "new_id",
]

# Deterministic constraint names: SQLite batch migrations can only drop or
# alter constraints they can name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_MODEL_VERSION_FK = ("model_versions.model_name", "model_versions.version")


def new_id(prefix: str) -> str:
    """Return a short random id such as ``rc-0123456789ab``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def _new_cluster_id() -> str:
    return new_id("rc")


def _new_deployment_id() -> str:
    return new_id("dp")


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Cluster(Base):
    """A Ray cluster asked of the Cluster Manager, from request to teardown."""

    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_cluster_id)
    name: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[ClusterPurpose] = mapped_column(str_enum(ClusterPurpose), index=True)
    state: Mapped[ClusterState] = mapped_column(
        str_enum(ClusterState), default=ClusterState.PENDING, index=True
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Idempotency key of the create request: a retried request finds its cluster.
    request_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    head_address: Mapped[str | None] = mapped_column(String(255))
    dashboard_url: Mapped[str | None] = mapped_column(String(255))
    job_api_url: Mapped[str | None] = mapped_column(String(255))
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Whatever the backend needs to re-adopt or kill the cluster after a restart.
    backend_handle: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Member id of the manager replica that provisions or
    # terminates the cluster; another replica's reconciliation leaves it alone while
    # that replica lives. None on rows from before migration 0002.
    owner: Mapped[str | None] = mapped_column(String(255))
    # Name of the warm pool the cluster was started for (kept after adoption, so
    # the audit trail says it came from the pool); None for a cold-started cluster.
    pool: Mapped[str | None] = mapped_column(String(64), index=True)
    # When a request adopted it from its pool; its TTL counts from here.
    adopted_at: Mapped[datetime | None]
    ttl_seconds: Mapped[int | None]
    idle_timeout_seconds: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ready_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    last_active_at: Mapped[datetime | None]

    events: Mapped[list[ClusterEvent]] = relationship(
        back_populates="cluster", order_by="ClusterEvent.id", passive_deletes=True
    )


class ClusterEvent(Base):
    """One state transition of a cluster."""

    __tablename__ = "cluster_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    # None for the event that records the cluster's creation.
    from_state: Mapped[ClusterState | None] = mapped_column(str_enum(ClusterState))
    to_state: Mapped[ClusterState] = mapped_column(str_enum(ClusterState))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cluster: Mapped[Cluster] = relationship(back_populates="events")


class WorkflowRun(Base):
    """One run of an Airflow DAG."""

    __tablename__ = "workflow_runs"
    __table_args__ = (UniqueConstraint("dag_id", "external_run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dag_id: Mapped[str] = mapped_column(String(250))
    external_run_id: Mapped[str] = mapped_column(String(250))
    status: Mapped[WorkflowStatus] = mapped_column(
        str_enum(WorkflowStatus), default=WorkflowStatus.QUEUED
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    steps: Mapped[list[WorkflowStep]] = relationship(
        back_populates="run", order_by="WorkflowStep.id", passive_deletes=True
    )


class WorkflowStep(Base):
    """One try of one task of a workflow run, and what it produced."""

    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("run_id", "name", "try_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(250))
    status: Mapped[WorkflowStatus] = mapped_column(
        str_enum(WorkflowStatus), default=WorkflowStatus.RUNNING
    )
    try_number: Mapped[int] = mapped_column(default=1)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("clusters.id", ondelete="SET NULL"))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[WorkflowRun] = relationship(back_populates="steps")


class RegisteredModel(Base):
    """A model name and its version counter."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # Last version number handed out; incremented under a row lock, never reused.
    latest_version: Mapped[int] = mapped_column(default=0)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One immutable version of a model: its artifacts, metrics and lineage."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("registered_models.name"))
    version: Mapped[int]
    status: Mapped[ModelVersionStatus] = mapped_column(
        str_enum(ModelVersionStatus), default=ModelVersionStatus.READY
    )
    artifact_uri: Mapped[str] = mapped_column(Text)
    # SHA-256 of the artifact manifest: identifies exactly what was stored.
    sha256: Mapped[str] = mapped_column(String(64))
    framework: Mapped[str | None] = mapped_column(String(64))
    task: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    workflow_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="SET NULL")
    )
    dataset_uri: Mapped[str | None] = mapped_column(Text)
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(128))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """A movable name (e.g. ``champion``) for one version of a model."""

    __tablename__ = "model_aliases"
    __table_args__ = (
        UniqueConstraint("model_name", "alias"),
        ForeignKeyConstraint(["model_name", "version"], list(_MODEL_VERSION_FK)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str] = mapped_column(String(128))
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Deployment(Base):
    """A model version served somewhere: a Docker container or a Ray cluster."""

    __tablename__ = "deployments"
    __table_args__ = (
        ForeignKeyConstraint(["model_name", "model_version"], list(_MODEL_VERSION_FK)),
        Index("ix_deployments_model", "model_name", "model_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_deployment_id)
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    status: Mapped[DeploymentStatus] = mapped_column(
        str_enum(DeploymentStatus), default=DeploymentStatus.PENDING, index=True
    )
    mode: Mapped[DeploymentMode] = mapped_column(str_enum(DeploymentMode))
    endpoint_url: Mapped[str | None] = mapped_column(String(512))
    port: Mapped[int | None]
    image: Mapped[str | None] = mapped_column(String(255))
    container_id: Mapped[str | None] = mapped_column(String(128))
    cluster_id: Mapped[str | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    workflow_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServiceEndpoint(Base):
    """Service discovery: a URL that serves a model version."""

    __tablename__ = "service_endpoints"
    __table_args__ = (
        ForeignKeyConstraint(["model_name", "model_version"], list(_MODEL_VERSION_FK)),
        Index("ix_service_endpoints_model", "model_name", "model_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    # One URL serves one thing at a time: registering it again replaces the row.
    url: Mapped[str] = mapped_column(String(512), unique=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("clusters.id", ondelete="SET NULL"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    health: Mapped[EndpointHealth] = mapped_column(
        str_enum(EndpointHealth), default=EndpointHealth.UNKNOWN
    )
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_checked_at: Mapped[datetime | None]
