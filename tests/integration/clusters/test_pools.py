"""Warm pools end to end: real manager process, real Postgres, real Ray (local backend)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import URL, create_engine, select

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, ResourceSpec
from rayline.metadata.models import Cluster
from tests.integration.clusters.leaks import assert_no_ray_left, ray_pids_of
from tests.integration.clusters.test_manager import run_job
from tests.integration.manager import ManagerProcess

pytestmark = pytest.mark.integration

READY_TIMEOUT = 600  # generous: a loaded 2-core host starts Ray slowly


def matching(name: str) -> ClusterCreate:
    """A request of the default training pool's shape (head with 2 CPUs, no workers)."""
    return ClusterCreate(name=name, purpose="training", head=ResourceSpec(cpus=2), ttl_seconds=900)


def wait_pooled(client: ClusterManagerClient, count: int, *, but: set[str]) -> list[ClusterPublic]:
    """Wait until ``count`` clusters not in ``but`` are POOLED; return them."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        pooled = [c for c in client.list_clusters(state="POOLED").data if c.id not in but]
        if len(pooled) >= count:
            return pooled
        assert time.monotonic() < deadline, "the pool did not fill"
        time.sleep(0.5)


def test_a_matching_request_adopts_a_warm_cluster_and_the_pool_refills(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory(pool="training:1", pool_refill_delay_seconds="0")
    client = manager.client()
    (spare,) = wait_pooled(client, 1, but=set())
    assert spare.pool == "training" and spare.adopted_at is None

    started = time.monotonic()
    adopted = client.create_cluster(matching("mine"))
    took = time.monotonic() - started
    print(f"POST -> READY from the pool: {took * 1000:.0f} ms")
    assert (adopted.id, adopted.state, adopted.name) == (spare.id, "READY", "mine")
    assert "nodes 1" in run_job(client.wait_until_ready(adopted.id, timeout=10), client)
    events = client.cluster_events(adopted.id)
    assert [e.to_state for e in events][-2:] == ["POOLED", "READY"]
    assert "adopted from warm pool 'training'" in (events[-1].reason or "")

    (refill,) = wait_pooled(client, 1, but={spare.id})
    assert refill.id != adopted.id
    assert client.create_cluster(matching("second")).id == refill.id  # the fresh one, not ours

    for cluster_id in (adopted.id, refill.id):
        client.delete_cluster(cluster_id)
        client.wait_until(cluster_id, state="TERMINATED", timeout=120)
    assert_no_ray_left(adopted.id, refill.id)


def test_eight_concurrent_creates_each_get_a_distinct_cluster(
    manager_factory: Callable[..., ManagerProcess],
) -> None:
    manager = manager_factory(
        pool="training:2",
        pool_refill_delay_seconds="3600",
        max_live_clusters="12",
        # Ten 2-CPU clusters live at once (8 + 2 warm): room for them beside each other,
        # which the summed-capacity check would refuse (409) on a 2-core host.
        cpu_overcommit="16",
    )
    client = manager.client()
    warm = {c.id for c in wait_pooled(client, 2, but=set())}
    with ThreadPoolExecutor(8) as threads:
        created = list(threads.map(lambda i: client.create_cluster(matching(f"c{i}")), range(8)))
    # The cold ones need not start: only who got which cluster matters here.
    for cluster in created:
        if cluster.pool is None:
            client.delete_cluster(cluster.id)
    ids = [c.id for c in created]
    assert len(set(ids)) == 8, ids
    assert {c.id for c in created if c.state == "READY"} == warm  # each warm one once
    for cluster in created:
        client.delete_cluster(cluster.id)
        client.wait_until(cluster.id, state="TERMINATED", timeout=180)
    assert_no_ray_left(*ids)


def test_manager_shutdown_drains_the_pool_and_leaves_no_ray_process(
    manager_factory: Callable[..., ManagerProcess], fresh_pg_url: URL
) -> None:
    manager = manager_factory(pool="training:1", pool_refill_delay_seconds="0")
    (spare,) = wait_pooled(manager.client(), 1, but=set())
    assert ray_pids_of(spare.id)

    manager.kill(signal.SIGTERM)  # a clean shutdown, as `rayline down` and the stack do

    assert manager.process is not None and manager.process.returncode is not None
    engine = create_engine(fresh_pg_url)
    try:
        with engine.connect() as connection:
            state = connection.scalar(select(Cluster.state).where(Cluster.id == spare.id))
    finally:
        engine.dispose()
    assert state == "TERMINATED"
    assert_no_ray_left(spare.id)
