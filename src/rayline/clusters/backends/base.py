"""The interface every cluster backend implements, and the typed values it exchanges.

A backend turns a `ClusterRequest` into running Ray processes and reports on them.
Everything it returns is a pydantic model that dumps to plain JSON, so the Cluster
Manager can store it (the `ClusterHandle` above all) and hand it back to a *new*
backend instance after a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rayline.clusters.backends.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidHandleError,
    ProvisionError,
    TeardownError,
    UnsupportedRequestError,
)
from rayline.clusters.ray_auth import read_token

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "Activity",
    "BackendError",
    "BackendUnavailableError",
    "Capacity",
    "ClusterBackend",
    "ClusterHandle",
    "ClusterRequest",
    "HealthReport",
    "InvalidHandleError",
    "NodeResources",
    "NodeStatus",
    "ProvisionError",
    "TeardownError",
    "UnsupportedRequestError",
]

_MIB = 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class _ResourceSpecLike(Protocol):
    """What `NodeResources.from_spec` reads (the API's ``ResourceSpec`` fits)."""

    @property
    def cpus(self) -> float: ...
    @property
    def memory_mb(self) -> int | None: ...
    @property
    def gpus(self) -> int: ...
    @property
    def custom(self) -> Mapping[str, float]: ...


class _ClusterSpecLike(Protocol):
    """What `ClusterRequest.from_spec` reads (the API's ``ClusterCreate`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def head(self) -> _ResourceSpecLike: ...
    @property
    def worker(self) -> _ResourceSpecLike: ...
    @property
    def worker_count(self) -> int: ...
    @property
    def runtime_env(self) -> Mapping[str, Any]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


class NodeResources(_Model):
    """Resources one Ray node offers to tasks (Ray's logical resources)."""

    cpus: float = Field(default=1, ge=0)
    memory_bytes: int | None = Field(default=None, ge=0, description="None: Ray decides.")
    gpus: int = Field(default=0, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: _ResourceSpecLike) -> NodeResources:
        """Convert the API's resource spec (memory in MiB) to the backend's view."""
        memory = None if spec.memory_mb is None else spec.memory_mb * _MIB
        return cls(cpus=spec.cpus, memory_bytes=memory, gpus=spec.gpus, custom=dict(spec.custom))


class ClusterRequest(_Model):
    """The backend's view of a cluster spec: what to start, nothing about lifecycle."""

    # It names files and directories: no separators, no leading dot.
    cluster_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    name: str
    purpose: str
    head: NodeResources = Field(default_factory=NodeResources)
    worker: NodeResources = Field(default_factory=NodeResources)
    worker_count: int = Field(default=0, ge=0)
    # Kept for backends that bake it into images or pods; jobs bring their own.
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def node_count(self) -> int:
        """Head plus workers."""
        return 1 + self.worker_count

    @classmethod
    def from_spec(cls, *, cluster_id: str, spec: _ClusterSpecLike) -> ClusterRequest:
        """Build a request from the API's ``ClusterCreate`` (or anything shaped like it)."""
        return cls(
            cluster_id=cluster_id,
            name=spec.name,
            purpose=str(spec.purpose),
            head=NodeResources.from_spec(spec.head),
            worker=NodeResources.from_spec(spec.worker),
            worker_count=spec.worker_count,
            runtime_env=dict(spec.runtime_env),
            labels=dict(spec.labels),
        )


class ClusterHandle(_Model):
    """Where a provisioned cluster answers, plus the backend's private ``handle``.

    ``handle`` is opaque JSON owned by the backend that made it: enough to find,
    probe and kill the cluster from another process after a manager restart.
    """

    backend: str
    cluster_id: str
    head_address: str = Field(description="GCS address, host:port; `ray start --address`.")
    dashboard_url: str
    job_api_url: str = Field(description="Base URL of the Ray Job Submission API.")
    metrics_targets: dict[str, str] = Field(
        default_factory=dict, description="Prometheus targets, name -> host:port."
    )
    handle: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The handle as plain JSON, ready for a database column."""
        return self.model_dump(mode="json")


class NodeStatus(_Model):
    """One Ray node as the GCS sees it."""

    node_id: str | None = None
    role: Literal["head", "worker"]
    alive: bool
    resources: dict[str, float] = Field(default_factory=dict)


class HealthReport(_Model):
    """One probe of a cluster; the caller decides READY from it (see `ready`)."""

    expected_nodes: int
    gcs_ok: bool = False
    alive_nodes: int = 0
    job_api_ok: bool = False
    dead: bool = Field(
        default=False, description="Processes are gone for good; waiting will not help."
    )
    reason: str = Field(default="", description="Why it is not ready (or dead); empty if ready.")
    nodes: list[dict[str, Any]] = Field(
        default_factory=list, description="`NodeStatus` rows as JSON, ready to store."
    )

    @property
    def ready(self) -> bool:
        """GCS healthy, every requested node alive, job API answering."""
        return (
            not self.dead
            and self.gcs_ok
            and self.job_api_ok
            and self.alive_nodes == self.expected_nodes
        )

    @property
    def summary(self) -> str:
        """One line for events and logs."""
        gcs = "healthy" if self.gcs_ok else "not healthy"
        jobs = "answering" if self.job_api_ok else "not answering"
        line = f"GCS {gcs}, {self.alive_nodes}/{self.expected_nodes} nodes alive, job API {jobs}"
        return f"{line}: {self.reason}" if self.reason else line


class Activity(_Model):
    """What runs on a cluster, for idle reaping."""

    running_jobs: int = 0
    pending_jobs: int = 0
    serve_apps: int = 0
    error: str | None = Field(
        default=None, description="Set when the job API did not answer; counts as busy."
    )

    @property
    def busy(self) -> bool:
        """True when anything runs, or when we could not tell (never reap blind)."""
        return bool(self.error or self.running_jobs or self.pending_jobs or self.serve_apps)


class Capacity(_Model):
    """The most a backend can give to all of one cluster's nodes together; None: no limit known."""

    max_cpus: float | None = None
    max_memory_mb: int | None = None
    max_gpus: int | None = None


class ClusterBackend(ABC):
    """Starts, watches and stops Ray clusters on one kind of infrastructure.

    Implementations are small classes listed in `rayline.clusters.backends.BACKENDS`.
    Every method is safe to call from several threads for different clusters; the
    Cluster Manager serialises calls for one cluster. ``provision`` starts things and
    returns at once; the caller polls ``probe`` until ``HealthReport.ready``.

    How the planned backends map onto this interface:

    * **local** (`LocalBackend`): one ``ray start --block`` process group per node on
      this host, every port allocated from a range; the handle keeps pids, process
      group ids, ports and the Ray temp dir, which is how ``adopt`` and ``terminate``
      find the processes again after a restart.
    * **docker**: one container per node (``docker run --network host`` running the
      same ``ray start`` command lines, so the local port allocator still applies);
      the handle keeps container ids and ports; ``adopt`` = the containers exist and
      carry our labels; ``terminate`` = ``docker rm -f``; ``capacity`` = the engine's
      CPUs and memory.
    * **kuberay**: ``provision`` renders and applies a ``RayCluster`` custom resource
      (head and worker group from the request's resources and labels) and returns;
      the handle keeps namespace, name and uid; ``probe`` reads the resource status
      and then the dashboard through its Service; ``terminate`` deletes the resource
      (the operator removes the pods); ``capacity`` = allocatable node resources.
    """

    #: Registry name, also stored in `ClusterHandle.backend`.
    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A lock held across manager replicas, by name.
        self.coordination_lock: Callable[[str], AbstractContextManager[Any]] = _no_lock

    @abstractmethod
    def provision(self, request: ClusterRequest) -> ClusterHandle:
        """Start the cluster's nodes and return without waiting for them to be healthy.

        Raises:
            UnsupportedRequestError: the backend cannot start this shape of cluster.
            ProvisionError: starting failed; nothing of the cluster is left running.
        """

    @abstractmethod
    def probe(self, handle: ClusterHandle, expected_nodes: int) -> HealthReport:
        """Check GCS health, alive nodes and the job API; never raises for a sick cluster."""

    @abstractmethod
    def activity(self, handle: ClusterHandle) -> Activity:
        """Count running or pending Ray jobs and Serve applications."""

    @abstractmethod
    def terminate(self, handle: ClusterHandle) -> None:
        """Stop everything the cluster started and free its resources; idempotent.

        Raises:
            TeardownError: something survived; calling again retries.
        """

    def release_unrecorded(self, cluster_id: str) -> None:
        """Stop whatever a provision of ``cluster_id`` started without a stored handle.

        For a cluster whose manager died between starting Ray and recording the
        handle, or that another replica was starting when it was deleted. Backends
        that can find a cluster's resources by its id override this; idempotent.

        Raises:
            TeardownError: something survived; calling again retries.
        """
        return None

    def auth_token(self, handle: ClusterHandle) -> str | None:
        """The cluster's Ray auth token (``Authorization: Bearer``), None if it has none.

        Secret: callers hand it only to the cluster's own clients, never to logs.
        The default reads `auth_token_path`.
        """
        path = self.auth_token_path(handle.cluster_id)
        return read_token(path) if path is not None else None

    def auth_token_path(self, cluster_id: str) -> Path | None:
        """The file on this machine that holds the cluster's token, if there is one."""
        return None

    @abstractmethod
    def adopt(self, handle: ClusterHandle) -> bool:
        """After a manager restart: is this cluster still running and provably ours?"""

    @abstractmethod
    def capacity(self) -> Capacity:
        """What this backend can give at most, so impossible specs are refused up front."""

    def load_handle(self, data: Mapping[str, Any]) -> ClusterHandle:
        """Read a handle stored by `ClusterHandle.to_json`.

        Raises:
            InvalidHandleError: the data is not a handle of this backend.
        """
        try:
            handle = ClusterHandle.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidHandleError(
                f"stored cluster handle is unreadable ({exc.error_count()} errors, first: "
                f"{exc.errors()[0]['msg']}); the cluster's processes must be cleaned up by hand"
            ) from exc
        if handle.backend != self.name:
            raise InvalidHandleError(
                f"handle of cluster {handle.cluster_id} belongs to backend "
                f"{handle.backend!r}, not {self.name!r}; start the manager with "
                f"RAYLINE_CLUSTER_BACKEND={handle.backend} to manage it"
            )
        return handle


def _no_lock(_name: str) -> AbstractContextManager[None]:
    """Single manager: nothing to coordinate with."""
    return nullcontext()
