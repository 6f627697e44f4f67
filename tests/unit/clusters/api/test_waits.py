"""Long-polls wait on the event loop, are woken by changes, and are capped per client."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from rayline.clusters.api.waits import TooManyWaitsError, client_key
from rayline.config import Settings
from tests.unit.clusters.api.fakes import manager_settings, spec, wait_state

# More waits than the thread pool that runs sync routes has threads (anyio: 40).
MANY = 48


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return manager_settings(tmp_path, api_max_waits_per_client=MANY)


def _ready_cluster(client: TestClient) -> str:
    cluster_id: str = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    return cluster_id


def _wait(client: TestClient, cluster_id: str, timeout: float) -> httpx.Response:
    return client.post(
        f"/v1/clusters/{cluster_id}/wait", params={"state": "TERMINATED", "timeout": timeout}
    )


def test_waits_hold_no_worker_thread(client: TestClient) -> None:
    cluster_id = _ready_cluster(client)
    with ThreadPoolExecutor(MANY) as pool:
        waits = [pool.submit(_wait, client, cluster_id, 6) for _ in range(MANY)]
        time.sleep(1)  # all of them waiting now
        started = time.monotonic()
        listed = client.get("/v1/clusters")  # a sync route: it needs a worker thread
        answered_in = time.monotonic() - started
        still_waiting = sum(not w.done() for w in waits)

    assert listed.status_code == 200
    assert answered_in < 3, f"a list waited {answered_in:.1f} s for a thread"
    assert still_waiting == MANY
    assert all(w.result().json()["state"] == "READY" for w in waits)  # timed out


def test_a_change_wakes_the_wait(client: TestClient) -> None:
    cluster_id = _ready_cluster(client)
    answers: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: answers.append(_wait(client, cluster_id, 30)))
    waiter.start()
    time.sleep(0.5)

    started = time.monotonic()
    client.delete(f"/v1/clusters/{cluster_id}")
    waiter.join(timeout=30)

    assert answers and answers[0].json()["state"] == "TERMINATED"
    assert time.monotonic() - started < 10


def test_a_client_past_its_waits_gets_429(client: TestClient, settings: Settings) -> None:
    cluster_id = _ready_cluster(client)
    with ThreadPoolExecutor(MANY) as pool:
        waits = [pool.submit(_wait, client, cluster_id, 4) for _ in range(MANY)]
        time.sleep(1)
        refused = _wait(client, cluster_id, 0)
        for w in waits:
            w.result()
    after = _wait(client, cluster_id, 0)

    assert refused.status_code == 429
    assert "RAYLINE_API_MAX_WAITS_PER_CLIENT" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "1"
    assert after.status_code == 200  # the slots came back


def test_slots_are_counted_per_client(client: TestClient) -> None:
    polls = client.app.state.long_polls  # type: ignore[attr-defined]
    with polls.slot("a"):
        for _ in range(MANY - 1):
            polls._held["a"] += 1  # fill a's slots
        with pytest.raises(TooManyWaitsError), polls.slot("a"):
            pass
        with polls.slot("b"):  # another client is not affected
            pass
        polls._held["a"] -= MANY - 1
    assert polls._held == {}


def test_clients_are_told_apart_by_address_and_credential() -> None:
    assert client_key("10.0.0.1", "Bearer x") != client_key("10.0.0.2", "Bearer x")
    assert client_key("10.0.0.1", "Bearer x") != client_key("10.0.0.1", "Bearer y")
    assert "Bearer" not in client_key("10.0.0.1", "Bearer secret")
