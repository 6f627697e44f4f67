"""Wire a `Coordinator` into the Cluster Manager.

The coordinator gets the quota, port and per-model locks, hears about every
cluster and endpoint change, and registers what `registry_snapshot` reads from
the metadata store.
"""

from __future__ import annotations

from rayline.clusters.backends.base import ClusterBackend
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.coordination import (
    ClusterEntry,
    Coordinator,
    RegistrySnapshot,
    ServiceEntry,
    create_coordinator,
)
from rayline.metadata.enums import ClusterState, EndpointHealth

__all__ = ["coordinate", "registry_snapshot"]


def coordinate(settings: Settings, service: ClusterService, backend: ClusterBackend) -> Coordinator:
    """Create the coordinator (ZooKeeper or single manager) and hook it in."""
    coordinator = create_coordinator(settings)
    service.coordinator = coordinator
    service.change_listeners.append(coordinator.registry_changed)
    backend.coordination_lock = coordinator.lock
    coordinator.start(lambda: registry_snapshot(service))
    return coordinator


def registry_snapshot(service: ClusterService) -> RegistrySnapshot:
    """READY clusters and not-unhealthy endpoints, as the registry should show them."""
    clusters = [
        ClusterEntry(
            id=c.id,
            name=c.name,
            purpose=str(c.purpose),
            state=str(c.state),
            head_address=c.head_address,
            job_api_url=c.job_api_url,
            dashboard_url=c.dashboard_url,
            labels=dict(c.labels),
        )
        for c in service.list_clusters(state=ClusterState.READY, limit=100_000)
    ]
    services = [
        ServiceEntry.of(s) for s in service.list_services() if s.health != EndpointHealth.UNHEALTHY
    ]
    return RegistrySnapshot(clusters=clusters, services=services)
