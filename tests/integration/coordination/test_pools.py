"""Warm pools with two manager replicas on real ZooKeeper, one Postgres, real Ray.

Only the leader refills; both replicas hand pooled clusters out, and never the same
one twice (the create locks and the conditional UPDATE of the hand-over).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL

from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from tests.integration.clusters.leaks import assert_no_ray_left
from tests.integration.coordination.conftest import (
    READY_TIMEOUT,
    Replicas,
    ZooKeeper,
    leader_of,
    make_replicas,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def pooled_replicas(zookeeper: ZooKeeper, fresh_pg_url: URL, tmp_path: Path) -> Iterator[Replicas]:
    yield from make_replicas(
        zookeeper.address,
        fresh_pg_url,
        tmp_path,
        pool="training:2",
        pool_refill_delay_seconds="3600",  # no refill during the test: two warm ones only
        max_live_clusters="12",
        # Ten 2-CPU clusters live at once: room beside each other on a 2-core host.
        cpu_overcommit="16",
    )


def test_two_replicas_never_hand_out_the_same_pooled_cluster(pooled_replicas: Replicas) -> None:
    a = pooled_replicas.start("a")
    wait_until("a to lead", lambda: leader_of(a) is a)
    b = pooled_replicas.start("b")
    client = b.client()
    deadline = time.monotonic() + READY_TIMEOUT
    while len(warm := client.list_clusters(state="POOLED").data) < 2:
        assert time.monotonic() < deadline, "the leader did not fill the pool"
        time.sleep(0.5)
    headers = {"Authorization": f"Bearer {a.token}"}

    def create(i: int) -> dict[str, Any]:
        manager = (a, b)[i % 2]
        body = ClusterCreate(
            name=f"p{i}", purpose="training", head=ResourceSpec(cpus=2), ttl_seconds=900
        ).model_dump(mode="json")
        response = httpx.post(f"{manager.url}/v1/clusters", json=body, headers=headers, timeout=120)
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()
        return created

    with ThreadPoolExecutor(max_workers=8) as threads:
        created = list(threads.map(create, range(8)))
    ids = [c["id"] for c in created]
    for cluster_id in ids:  # the cold ones need not finish starting
        client.delete_cluster(cluster_id)
    assert len(set(ids)) == 8, ids
    adopted = [c["id"] for c in created if c["state"] == "READY"]
    assert sorted(adopted) == sorted(c.id for c in warm)  # each warm one exactly once
    for cluster_id in ids:
        client.wait_until(cluster_id, state="TERMINATED", timeout=180)
    assert_no_ray_left(*ids)
