"""Attacks on a real Cluster Manager (uvicorn, Postgres) by a client without the token.

- exhaust its memory with a huge body, declared or chunked (413 before auth);
- hold many idle connections (uvicorn's limit_concurrency answers 503 past it);
- learn its version, backend and leadership from ``/healthz``;
- with the token, register an endpoint that declares itself healthy;
- with the token, ask for more CPUs than the host has beside the live clusters
  (409), or hold more long-polls than a client may (429).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rayline.clusters.client import CapacityExceededError
from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from tests.integration.manager import ManagerProcess

LIMIT = 256 * 1024


def test_oversized_bodies_are_refused_before_auth(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory()
    json = {"content-type": "application/json"}

    declared = httpx.post(f"{manager.url}/v1/clusters", content=b"x" * (LIMIT + 1), headers=json)

    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 4096 + 2):
            yield b" " * 4096

    chunked = httpx.post(f"{manager.url}/v1/clusters", content=chunks(), headers=json)

    assert declared.status_code == 413, declared.text
    assert chunked.status_code == 413, chunked.text
    assert httpx.post(f"{manager.url}/v1/clusters", json={}).status_code == 401


def test_health_tells_strangers_only_ok_or_degraded(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory()
    auth = {"Authorization": f"Bearer {manager.token}"}

    anonymous = httpx.get(f"{manager.url}/healthz").json()
    detailed = httpx.get(f"{manager.url}/healthz", headers=auth).json()

    assert anonymous == {"status": "ok"}
    assert "coordination" in detailed and "version" in detailed


def test_idle_connections_cannot_pile_up_past_the_concurrency_limit(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory(api_limit_concurrency="2")
    idle = [socket.create_connection(("127.0.0.1", manager.port)) for _ in range(2)]
    try:
        answer = httpx.get(f"{manager.url}/healthz", timeout=30)
    finally:
        for connection in idle:
            connection.close()

    assert answer.status_code == 503
    assert httpx.get(f"{manager.url}/healthz", timeout=30).status_code == 200


def test_an_endpoint_cannot_register_itself_healthy(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory()
    auth = {"Authorization": f"Bearer {manager.token}"}
    body = {"model_name": "iris", "model_version": 1, "url": "http://127.0.0.1:9"}

    refused = httpx.post(
        f"{manager.url}/v1/services", json={**body, "health": "healthy"}, headers=auth
    )

    assert refused.status_code == 422 and "health" in refused.text


def test_capacity_is_the_sum_of_live_clusters_and_waits_are_capped(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory(api_max_waits_per_client="2")
    client = manager.client()
    budget = len(os.sched_getaffinity(0)) * 4  # the host's cores x the default overcommit

    def ask(name: str, cpus: float) -> str:
        spec = ClusterCreate(
            name=name, purpose="training", head=ResourceSpec(cpus=cpus), ttl_seconds=600
        )
        return client.create_cluster(spec).id

    big = ask("big", budget - 1)
    with pytest.raises(CapacityExceededError, match=f"already hold {budget - 1:g} of the"):
        ask("more", 2)

    url = f"{manager.url}/v1/clusters/{big}/wait"
    auth = {"Authorization": f"Bearer {manager.token}"}
    params = {"state": "TERMINATED", "timeout": "6"}
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(httpx.post, url, params=params, headers=auth, timeout=60) for _ in "ab"]
        time.sleep(2)
        refused = httpx.post(url, params={**params, "timeout": "0"}, headers=auth, timeout=60)
        assert [w.result().status_code for w in held] == [200, 200]

    assert refused.status_code == 429, refused.text
    assert "RAYLINE_API_MAX_WAITS_PER_CLIENT" in refused.json()["detail"]
    client.delete_cluster(big)
    client.wait_until(big, state="TERMINATED", timeout=300)
    ask("more", 2)  # the resources came back
