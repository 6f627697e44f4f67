"""Everything a running Cluster Manager holds, built once at start-up."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from rayline.clusters.auth import resolve_token
from rayline.clusters.backends import get_backend
from rayline.clusters.backends.base import ClusterBackend
from rayline.clusters.lifecycle import LifecycleManager
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade

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

    @classmethod
    def start(cls, settings: Settings, *, run_lifecycle: bool = True) -> ManagerRuntime:
        """Migrate the database, build the services, reconcile and start the loop."""
        token = resolve_token(settings, create=True)
        assert token is not None  # create=True always yields one
        upgrade(settings.database_url)
        engine = create_engine_for(settings.database_url)
        service = ClusterService(
            sessions=sessionmaker(engine, expire_on_commit=False), settings=settings
        )
        backend = get_backend(settings.cluster_backend, settings)
        metrics = ManagerMetrics()
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
        if run_lifecycle:
            lifecycle.start()
        log.info("cluster manager started (backend %s)", backend.name)
        return cls(settings, engine, token, backend, service, provisioner, lifecycle, metrics)

    def stop(self) -> None:
        """Stop background work; running clusters stay up and are re-adopted later."""
        self.lifecycle.stop()
        self.provisioner.shutdown()
        self.engine.dispose()
