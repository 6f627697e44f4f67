"""Wire schemas of the Cluster Manager API, separate from the database tables.

`XCreate` is what a client sends, `XPublic` what the API answers, `XsPublic` a
page of them. Every request schema forbids unknown fields so a typo is a 422
naming the field, not a silently ignored setting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rayline.metadata.enums import ClusterPurpose as Purpose
from rayline.metadata.enums import ClusterState

__all__ = [
    "MIN_NODE_CPUS",
    "ClusterCreate",
    "ClusterCredentials",
    "ClusterEventPublic",
    "ClusterPublic",
    "ClusterState",
    "ClustersPublic",
    "NodePublic",
    "PoolsDrained",
    "Purpose",
    "ResourceSpec",
    "ServiceCreate",
    "ServicePublic",
    "ServicesPublic",
]

# DNS-label-like names: safe in process titles, file names, Kubernetes resources.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_./]{0,61}[A-Za-z0-9])?$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,127}$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,127}$"
MAX_TTL_SECONDS = 30 * 24 * 3600

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
MIN_NODE_CPUS = 0.1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceSpec(_Strict):
    """Resources of one Ray node."""

    # Every node holds some CPU, so the capacity check bounds how many nodes fit.
    cpus: float = Field(
        default=1,
        ge=MIN_NODE_CPUS,
        le=1024,
        description=f"Logical CPUs (num-cpus), at least {MIN_NODE_CPUS} per node.",
    )
    memory_mb: int | None = Field(
        default=None, ge=64, le=16 * 1024 * 1024, description="Memory for Ray tasks, MiB."
    )
    gpus: int = Field(default=0, ge=0, le=64)
    custom: dict[
        Annotated[str, Field(pattern=LABEL_KEY_PATTERN)], Annotated[float, Field(ge=0)]
    ] = Field(default_factory=dict, max_length=32, description="Custom Ray resources.")


class ClusterCreate(_Strict):
    """A request for a Ray cluster."""

    name: Name
    purpose: Purpose
    head: ResourceSpec = Field(default_factory=ResourceSpec)
    worker: ResourceSpec = Field(default_factory=ResourceSpec)
    worker_count: int = Field(default=0, ge=0, le=64)
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int = Field(default=3600, ge=1, le=MAX_TTL_SECONDS)
    idle_timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL_SECONDS)
    labels: dict[
        Annotated[str, Field(pattern=LABEL_KEY_PATTERN)], Annotated[str, Field(max_length=63)]
    ] = Field(default_factory=dict, max_length=32)
    request_id: Annotated[str, Field(pattern=REQUEST_ID_PATTERN)] | None = Field(
        default=None,
        description="Client idempotency key: the same request_id returns the same cluster.",
    )

    @field_validator("runtime_env")
    @classmethod
    def _runtime_env_is_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(str(value)) > 64 * 1024:
            raise ValueError("runtime_env is larger than 64 KiB; ship code as a package instead")
        return value


class NodePublic(BaseModel):
    """One Ray node of a cluster as last probed."""

    node_id: str | None = None
    role: Literal["head", "worker"]
    alive: bool
    resources: dict[str, float] = Field(default_factory=dict)


class ClusterPublic(BaseModel):
    """A cluster as the API shows it."""

    id: str
    name: str
    purpose: Purpose
    state: ClusterState
    reason: str | None = None
    backend: str
    head_address: str | None = None
    dashboard_url: str | None = None
    job_api_url: str | None = None
    nodes: list[NodePublic] = Field(default_factory=list)
    worker_count: int
    labels: dict[str, str] = Field(default_factory=dict)
    ttl_seconds: int
    idle_timeout_seconds: int | None = None
    request_id: str | None = None
    owner: str | None = Field(
        default=None,
        description="The manager replica that provisions or tears down the cluster "
        "(with coordination on); None for a single manager.",
    )
    pool: str | None = Field(
        default=None,
        description="The warm pool the cluster was started for (state POOLED until a "
        "request adopts it); None for a cluster started cold for its request.",
    )
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None = None
    adopted_at: datetime | None = Field(
        default=None, description="When a request adopted it from its pool."
    )
    terminated_at: datetime | None = None


class ClusterCredentials(BaseModel):
    """What a client needs to call one cluster's dashboard and Jobs API. Secret.

    Sent only by ``GET /v1/clusters/{id}/credentials``, never in a cluster listing.
    Send the token as ``Authorization: Bearer <ray_auth_token>``.
    """

    cluster_id: str
    ray_auth_token: str | None = Field(
        default=None, repr=False, description="None: the cluster runs without a token."
    )
    ray_auth_token_path: str | None = Field(
        default=None,
        description="The token's file on the manager's machine (readable by its user only), "
        "for RAY_AUTH_TOKEN_PATH of clients on that machine.",
    )


class ClustersPublic(BaseModel):
    """A list of clusters."""

    data: list[ClusterPublic]
    count: int


class ClusterEventPublic(BaseModel):
    """One state transition of a cluster."""

    from_state: ClusterState | None
    to_state: ClusterState
    reason: str | None
    created_at: datetime


class ServiceCreate(_Strict):
    """A serving endpoint registered by a deployment."""

    model_name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    model_version: int = Field(ge=1)
    url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=512)]
    cluster_id: str | None = Field(default=None, max_length=64)
    deployment_id: str | None = Field(default=None, max_length=32)
    # No `health`: an endpoint does not vouch for itself; it starts `unknown`.


class ServicePublic(BaseModel):
    """A registered serving endpoint."""

    id: int
    model_name: str
    model_version: int
    url: str
    cluster_id: str | None
    deployment_id: str | None
    health: str
    registered_at: datetime
    last_checked_at: datetime | None = None


class ServicesPublic(BaseModel):
    """A list of serving endpoints."""

    data: list[ServicePublic]
    count: int


class PoolsDrained(BaseModel):
    """The pooled clusters a drain ended."""

    drained: list[str]
