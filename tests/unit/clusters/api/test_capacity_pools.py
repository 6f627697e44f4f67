"""Warm spares give way to a request that needs their resources, and never crowd one out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rayline.config import Settings
from tests.unit.clusters.api.fakes import manager_settings, runtime, spec


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A spare's head has 2 CPUs; the fake host gives 8.
    return manager_settings(tmp_path, pool="training:1", pool_refill_delay_seconds=0)


def test_a_request_evicts_a_warm_spare_to_fit(client: TestClient) -> None:
    spare = runtime(client).pools.fill_once()

    response = client.post("/v1/clusters", json=spec(name="big", head={"cpus": 7}))

    assert response.status_code == 202, response.text
    assert client.get(f"/v1/clusters/{spare}").json()["state"] in ("TERMINATING", "TERMINATED")


def test_no_spare_is_started_where_it_would_not_fit(client: TestClient) -> None:
    assert client.post("/v1/clusters", json=spec(name="big", head={"cpus": 7})).status_code == 202

    assert runtime(client).pools.fill_once() is None
