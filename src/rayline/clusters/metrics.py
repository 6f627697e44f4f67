"""Prometheus metrics of the Cluster Manager, on a registry of its own.

A registry per application (not the global one) lets tests start several managers
in one process without duplicate-metric errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ManagerMetrics"]

_PROVISION_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)


@dataclass
class ManagerMetrics:
    """The manager's metrics: clusters, provisioning, API latency, reaper actions."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.clusters = Gauge(
            "rayline_clusters",
            "Clusters known to the manager, by state and purpose.",
            ["state", "purpose"],
            registry=self.registry,
        )
        self.provisioning_seconds = Histogram(
            "rayline_cluster_provisioning_seconds",
            "Time from a cluster request to READY.",
            ["purpose", "backend"],
            buckets=_PROVISION_BUCKETS,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "rayline_api_request_seconds",
            "Cluster Manager API request latency.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.reaper_actions = Counter(
            "rayline_reaper_actions_total",
            "Actions taken by the lifecycle manager.",
            ["action"],
            registry=self.registry,
        )
        self.reaper_errors = Counter(
            "rayline_reaper_errors_total",
            "Lifecycle manager passes that raised an error.",
            registry=self.registry,
        )
