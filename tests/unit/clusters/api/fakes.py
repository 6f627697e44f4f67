"""Test doubles and helpers shared by the Cluster Manager API unit tests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from rayline.clusters.backends.base import (
    Activity,
    Capacity,
    ClusterBackend,
    ClusterHandle,
    ClusterRequest,
    HealthReport,
)
from rayline.clusters.runtime import ManagerRuntime
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade

TOKEN = "t" * 40


class FakeBackend(ClusterBackend):
    """Clusters that are 'up' as soon as they are provisioned; a dict is the host."""

    name = "fake"
    live: ClassVar[dict[str, ClusterRequest]] = {}
    busy: ClassVar[set[str]] = set()
    lock = threading.Lock()

    def provision(self, request: ClusterRequest) -> ClusterHandle:
        with self.lock:
            self.live[request.cluster_id] = request
        return ClusterHandle(
            backend=self.name,
            cluster_id=request.cluster_id,
            head_address="127.0.0.1:1",
            dashboard_url="http://127.0.0.1:2",
            job_api_url="http://127.0.0.1:2",
            handle={"id": request.cluster_id},
        )

    def probe(self, handle: ClusterHandle, expected_nodes: int) -> HealthReport:
        alive = handle.cluster_id in self.live
        return HealthReport(
            expected_nodes=expected_nodes,
            gcs_ok=alive,
            job_api_ok=alive,
            alive_nodes=expected_nodes if alive else 0,
            dead=not alive,
            reason="" if alive else "fake head killed",
            nodes=[{"role": "head", "alive": alive, "resources": {"CPU": 1.0}}],
        )

    def activity(self, handle: ClusterHandle) -> Activity:
        return Activity(running_jobs=1 if handle.cluster_id in self.busy else 0)

    def terminate(self, handle: ClusterHandle) -> None:
        with self.lock:
            self.live.pop(handle.cluster_id, None)

    def adopt(self, handle: ClusterHandle) -> bool:
        return handle.cluster_id in self.live

    def capacity(self) -> Capacity:
        return Capacity(max_cpus=2, max_memory_mb=1024, max_gpus=0)


def spec(**overrides: Any) -> dict[str, Any]:
    """A valid cluster request body with ``overrides`` applied."""
    body: dict[str, Any] = {"name": "train-1", "purpose": "training", "ttl_seconds": 600}
    body.update(overrides)
    return body


def wait_state(client: TestClient, cluster_id: str, state: str = "READY") -> dict[str, Any]:
    """Long-poll until the cluster is in ``state`` (or ended) and return it."""
    response = client.post(
        f"/v1/clusters/{cluster_id}/wait", params={"state": state, "timeout": 10}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def runtime(client: TestClient) -> ManagerRuntime:
    """The manager runtime behind a test client."""
    value: ManagerRuntime = client.app.state.runtime  # type: ignore[attr-defined]
    return value


def manager_settings(home: Path, **overrides: Any) -> Settings:
    """Settings of an in-process manager on SQLite in ``home`` with the fake backend."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": f"sqlite:///{home / 'meta.db'}",
        "api_token": TOKEN,
        "cluster_backend": "fake",
        "reaper_interval_seconds": 3600,  # tests drive the lifecycle and the pools by hand
    }
    return Settings(**(values | overrides))


def fake_service(home: Path, **overrides: Any) -> tuple[Settings, ClusterService, Engine]:
    """Settings for the fake backend, a migrated SQLite store in ``home`` and its service."""
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'meta.db'}",
        api_token=TOKEN,
        cluster_backend="fake",
        **overrides,
    )
    upgrade(settings.database_url)
    engine = create_engine_for(settings.database_url)
    service = ClusterService(
        sessions=sessionmaker(engine, expire_on_commit=False), settings=settings
    )
    return settings, service, engine
