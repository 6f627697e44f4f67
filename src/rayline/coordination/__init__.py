"""Coordination of Cluster Manager replicas (optional): ZooKeeper when configured.

`create_coordinator` returns `LocalCoordinator` (one manager, nothing shared)
unless ``RAYLINE_ZOOKEEPER_HOSTS`` is set; then a `ZooKeeperCoordinator` gives
leader election for the lifecycle manager, distributed locks, ephemeral
registration of READY clusters and live endpoints, and the shared config znode.
`rayline.coordination.discovery.Discovery` reads the registry from clients.
"""

from __future__ import annotations

from rayline.config import Settings
from rayline.coordination.base import (
    ClusterEntry,
    CoordinationUnavailableError,
    Coordinator,
    LocalCoordinator,
    RegistrySnapshot,
    ServiceEntry,
    new_member_id,
)

__all__ = [
    "ClusterEntry",
    "CoordinationUnavailableError",
    "Coordinator",
    "LocalCoordinator",
    "RegistrySnapshot",
    "ServiceEntry",
    "create_coordinator",
    "new_member_id",
]


def create_coordinator(settings: Settings) -> Coordinator:
    """ZooKeeper coordination when ``zookeeper_hosts`` is set, else a single manager."""
    if not settings.zookeeper_hosts:
        return LocalCoordinator(new_member_id(settings.api_port))
    from rayline.coordination.zookeeper import ZooKeeperCoordinator

    return ZooKeeperCoordinator(settings)
