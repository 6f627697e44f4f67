"""Everything a running Cluster Manager holds, built once at start-up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from rayline.clusters.auth import resolve_token
from rayline.clusters.backends import get_backend
from rayline.clusters.backends.base import ClusterBackend
from rayline.clusters.coordination import coordinate
from rayline.clusters.lifecycle import LifecycleManager
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.pool_keeper import PoolKeeper
from rayline.clusters.prometheus_sd import watch as watch_prometheus_targets
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.coordination import Coordinator, LocalCoordinator
from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade
from rayline.monitoring.workflows import WorkflowCollector

__all__ = ["ManagerRuntime"]

log = logging.getLogger(__name__)


@dataclass
class ManagerRuntime:
    """The manager's engine, service, backend, background workers and metrics."""

    settings: Settings
    engine: Engine
    token: SecretStr
    backend: ClusterBackend
    service: ClusterService
    provisioner: Provisioner
    lifecycle: LifecycleManager
    metrics: ManagerMetrics
    pools: PoolKeeper
    coordinator: Coordinator = field(default_factory=LocalCoordinator)

    @classmethod
    def start(cls, settings: Settings, *, run_lifecycle: bool = True) -> ManagerRuntime:
        """Migrate the database, build the services, reconcile and start the loop."""
        token = resolve_token(settings, create=True)
        assert token is not None  # create=True always yields one
        upgrade(settings.database_url)
        engine = create_engine_for(settings.database_url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        service = ClusterService(sessions=sessions, settings=settings)
        watch_prometheus_targets(service, settings)
        backend = get_backend(settings.cluster_backend, settings)
        service.capacity = backend.capacity
        metrics = ManagerMetrics()
        metrics.registry.register(WorkflowCollector(sessions))
        provisioner = Provisioner(
            service=service, backend=backend, settings=settings, metrics=metrics
        )
        lifecycle = LifecycleManager(
            service=service,
            provisioner=provisioner,
            backend=backend,
            settings=settings,
            metrics=metrics,
        )
        pools = PoolKeeper(
            service=service, provisioner=provisioner, backend_name=backend.name, settings=settings
        )
        # Only the elected replica runs the lifecycle manager and keeps the pools.
        coordinator = coordinate(settings, service, backend)
        if run_lifecycle:

            def elected() -> None:
                lifecycle.start()
                pools.start()

            def revoked() -> None:
                pools.stop()
                lifecycle.stop()

            coordinator.lead(elected, revoked)
        log.info("cluster manager started (backend %s, pools %s)", backend.name, pools.shapes)
        return cls(
            settings,
            engine,
            token,
            backend,
            service,
            provisioner,
            lifecycle,
            metrics,
            pools,
            coordinator,
        )

    def stop(self) -> None:
        """Drain this replica's pools; other running clusters stay up, re-adopted later."""
        try:
            self.pools.drain()  # spares nobody asked for must not outlive the manager
        except Exception:  # e.g. ZooKeeper gone: the rest of the shutdown must still run
            log.exception("draining the warm pools failed; the next leader reconciles them")
        self.lifecycle.stop()
        # Finish the Ray starts in flight (their handles get
        # stored) while our member node still says we own those clusters; then leave,
        # and the next leader takes over what we were provisioning or terminating.
        self.provisioner.shutdown()
        self.coordinator.stop()
        self.engine.dispose()
