"""What a Cluster Manager asks of coordination, and the single-manager default.

Without ``RAYLINE_ZOOKEEPER_HOSTS`` the manager uses `LocalCoordinator`: it is
always the leader, its locks are process-local, and nothing is registered
anywhere but the metadata store. `rayline.coordination.zookeeper` implements the
same interface on ZooKeeper for two or more replicas.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ClusterEntry",
    "CoordinationUnavailableError",
    "Coordinator",
    "LocalCoordinator",
    "RegistrySnapshot",
    "ServiceEntry",
    "new_member_id",
]


def new_member_id(port: int | None = None) -> str:
    """A replica's member id: ``host:port:pid-<random>``, never reused by a later process.

    Clusters record it as their ``owner``; the random part keeps a restarted process
    that got the same pid (pid 1 in a container) from passing for its predecessor.
    """
    where = socket.gethostname() if port is None else f"{socket.gethostname()}:{port}"
    return f"{where}:{os.getpid()}-{secrets.token_hex(3)}"


class CoordinationUnavailableError(RuntimeError):
    """A write needs a distributed lock but ZooKeeper cannot be reached."""

    def __init__(self, what: str, state: str) -> None:
        super().__init__(
            f"coordination is degraded (ZooKeeper {state}): cannot take the {what} lock; "
            "reads keep working, retry once ZooKeeper is back (see /healthz)"
        )
        self.what = what
        self.state = state


@dataclass(frozen=True)
class ClusterEntry:
    """A READY cluster as registered under ``/rayline/clusters/<purpose>/<id>``."""

    id: str
    name: str
    purpose: str
    state: str
    head_address: str | None
    job_api_url: str | None
    dashboard_url: str | None
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The znode's content."""
        return asdict(self)


@dataclass(frozen=True)
class ServiceEntry:
    """A live endpoint; all of one model version share ``/rayline/services/<model>/<version>``."""

    id: int
    model_name: str
    model_version: int
    url: str
    cluster_id: str | None
    health: str

    @classmethod
    def of(cls, endpoint: Any) -> ServiceEntry:
        """From anything with the same attributes (a stored endpoint, an API answer)."""
        values = {f.name: getattr(endpoint, f.name) for f in fields(cls)}
        return cls(**{**values, "health": str(values["health"])})

    def to_json(self) -> dict[str, Any]:
        """One item of the znode's ``endpoints`` list."""
        return asdict(self)


@dataclass(frozen=True)
class RegistrySnapshot:
    """What the metadata store says is live right now."""

    clusters: list[ClusterEntry]
    services: list[ServiceEntry]


class Coordinator(ABC):
    """Leadership, locks, registration and shared settings for one manager."""

    enabled: bool = False
    #: This replica's member id (see `new_member_id`), recorded as a cluster's owner.
    identifier: str

    @abstractmethod
    def start(self, snapshot: Callable[[], RegistrySnapshot]) -> None:
        """Connect (if needed); ``snapshot`` reads the live set for registration."""

    @abstractmethod
    def stop(self) -> None:
        """Give up leadership and registrations; disconnect."""

    @abstractmethod
    def lead(self, on_elected: Callable[[], None], on_revoked: Callable[[], None]) -> None:
        """Run ``on_elected`` whenever this replica becomes leader, ``on_revoked`` when not."""

    @abstractmethod
    def lock(self, name: str) -> Any:
        """A context manager held across every replica (``name`` like ``cluster-quota``)."""

    @abstractmethod
    def member_alive(self, identifier: str) -> bool:
        """Whether the replica with this member id still runs (and owns its clusters)."""

    @abstractmethod
    def registry_changed(self) -> None:
        """Something live changed: bring the registered entries up to date soon."""

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """For ``/healthz``: mode, connection, leadership, degraded or not."""


class LocalCoordinator(Coordinator):
    """One manager alone: always leader, locks inside this process, no registry."""

    def __init__(self, identifier: str | None = None) -> None:
        self.identifier = identifier or new_member_id()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._on_revoked: Callable[[], None] | None = None

    def start(self, snapshot: Callable[[], RegistrySnapshot]) -> None:
        """Nothing to connect to."""

    def stop(self) -> None:
        """Stop leading (the lifecycle manager stops with the runtime)."""
        if self._on_revoked is not None:
            self._on_revoked()
            self._on_revoked = None

    def lead(self, on_elected: Callable[[], None], on_revoked: Callable[[], None]) -> None:
        """The only manager leads at once."""
        self._on_revoked = on_revoked
        on_elected()

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """A process-local lock per name."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def member_alive(self, identifier: str) -> bool:
        """Alone, any other owner is an earlier run of this manager: gone."""
        return identifier == self.identifier

    def registry_changed(self) -> None:
        """No registry without ZooKeeper: discovery reads the metadata store."""

    def status(self) -> dict[str, Any]:
        """Single manager: never degraded."""
        return {"mode": "single", "degraded": False, "leader": True}
