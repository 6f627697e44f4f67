"""An in-process Cluster Manager on SQLite with an in-memory backend.

The fake backend stands in for Ray only in these API-level unit tests; the same
paths run against real Ray and Postgres in tests/integration/clusters/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rayline.clusters import backends
from rayline.clusters.api.app import create_app
from rayline.config import Settings
from tests.unit.clusters.api.fakes import TOKEN, FakeBackend, manager_settings


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeBackend]]:
    monkeypatch.setitem(backends.BACKENDS, "fake", FakeBackend)
    FakeBackend.live = {}
    FakeBackend.busy = set()
    yield FakeBackend


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return manager_settings(tmp_path, max_live_clusters=3, unhealthy_grace_seconds=0)


@pytest.fixture
def client(settings: Settings, fake_backend: type[FakeBackend]) -> Iterator[TestClient]:
    app = create_app(settings, run_lifecycle=False)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client
