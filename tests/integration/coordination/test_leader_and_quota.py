"""Leader fail-over and the shared quota, with real Ray clusters (run under the heavy-run flock)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from kazoo.client import KazooClient

from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from rayline.coordination.shared_config import update_shared
from tests.integration.clusters.leaks import assert_no_ray_left
from tests.integration.coordination.conftest import (
    READY_TIMEOUT,
    SESSION_TIMEOUT,
    Replicas,
    leader_of,
    wait_for_quota,
    wait_until,
)

pytestmark = pytest.mark.integration

TTL = 90  # long enough to reach READY first on a loaded host, short enough to expire after the kill


def test_leader_dies_and_the_other_replica_takes_over_and_reaps(
    replicas: Replicas, zk_client: KazooClient
) -> None:
    a = replicas.start("a")
    wait_until("a to lead", lambda: leader_of(a) is a)
    b = replicas.start("b")
    client = b.client()
    spec = ClusterCreate(
        name="expires", purpose="training", head=ResourceSpec(cpus=1), ttl_seconds=TTL
    )
    cluster = client.wait_until_ready(client.create_cluster(spec).id, timeout=READY_TIMEOUT)
    path = f"{replicas.root}/clusters/training/{cluster.id}"
    wait_until("the READY cluster's znode", lambda: zk_client.exists(path))
    state = client.get_cluster(cluster.id).state
    assert state == "READY", f"the cluster is {state} before the kill: raise TTL for this host"

    a.kill()  # SIGKILL: no goodbye, ZooKeeper has to expire the session
    killed = time.monotonic()
    wait_until("b to lead", lambda: leader_of(b) is b, SESSION_TIMEOUT + 30)
    print(f"fail-over took {time.monotonic() - killed:.1f}s (session timeout {SESSION_TIMEOUT}s)")

    # Only the leader reaps; a is dead, so b does it once the TTL has passed.
    ended = client.wait_until(cluster.id, state="TERMINATED", timeout=TTL + 180)
    assert ended.state == "TERMINATED"
    reasons = [e.reason or "" for e in client.cluster_events(cluster.id)]
    assert any("TTL" in r for r in reasons), reasons
    assert f"cluster {cluster.id} -> TERMINATING" in b.log.read_text()
    wait_until("the znode to go", lambda: zk_client.exists(path) is None)
    assert_no_ray_left(cluster.id)


def test_twenty_concurrent_creates_on_two_replicas_respect_a_shared_quota_of_three(
    replicas: Replicas, zk_client: KazooClient
) -> None:
    a = replicas.start("a")
    b = replicas.start("b")
    update_shared(zk_client, f"{replicas.root}/config", {"max_live_clusters": 3})
    wait_for_quota(3, a, b)
    headers = {"Authorization": f"Bearer {a.token}"}

    def create(i: int) -> int:
        manager = (a, b)[i % 2]
        body = ClusterCreate(
            name=f"q{i}",
            purpose="training",
            head=ResourceSpec(cpus=1),
            ttl_seconds=900,
            request_id=f"quota-{i}",
        ).model_dump(mode="json")
        response = httpx.post(f"{manager.url}/v1/clusters", json=body, headers=headers, timeout=120)
        return response.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(create, range(20)))
    assert sorted(codes) == [202] * 3 + [429] * 17, codes
    live = [c for c in a.client().list_clusters().data if not c.state.is_terminal()]
    assert len(live) == 3
