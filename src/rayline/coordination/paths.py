"""Where things live in ZooKeeper, under one root (``RAYLINE_ZOOKEEPER_ROOT``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Paths"]


@dataclass(frozen=True)
class Paths:
    """Znode paths of one Rayline installation."""

    root: str = "/rayline"

    @property
    def clusters(self) -> str:
        """Parent of ``<purpose>/<cluster id>`` ephemeral nodes."""
        return f"{self.root}/clusters"

    @property
    def services(self) -> str:
        """Parent of ``<model>/<version>`` ephemeral nodes."""
        return f"{self.root}/services"

    @property
    def election(self) -> str:
        """Lifecycle-manager leader election (kazoo ``Election``)."""
        return f"{self.root}/election/lifecycle"

    @property
    def members(self) -> str:
        """Parent of one ephemeral node per live manager replica (named by member id)."""
        return f"{self.root}/members"

    @property
    def config(self) -> str:
        """The shared configuration (JSON)."""
        return f"{self.root}/config"

    def cluster(self, purpose: str, cluster_id: str) -> str:
        """One READY cluster."""
        return f"{self.clusters}/{purpose}/{cluster_id}"

    def service(self, model: str, version: int) -> str:
        """The live endpoints of one model version."""
        return f"{self.services}/{model}/{version}"

    def member(self, identifier: str) -> str:
        """One live replica; clusters it owns are left to it while this node exists."""
        return f"{self.members}/{identifier}"

    def lock(self, name: str) -> str:
        """A distributed lock (kazoo ``Lock``)."""
        return f"{self.root}/locks/{name}"
