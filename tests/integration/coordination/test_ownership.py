"""Cluster ownership between real replicas (real ZooKeeper, Postgres and Ray).

Replica a provisions a cluster while replica b is elected and reconciles: b must
leave the cluster to a (it becomes READY, not FAILED). Then a is killed: b takes
the cluster over (owner b, still READY, registered again under b's session).
Three replicas so that b's election happens while a is alive and busy: c leads
first and steps down (SIGTERM hands leadership over at once, to the next in line).
Run under the heavy-run flock (it starts a Ray cluster).
"""

from __future__ import annotations

import signal
import threading

import pytest
from kazoo.client import KazooClient
from sqlalchemy import URL, create_engine, text

from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from tests.integration.coordination.conftest import (
    READY_TIMEOUT,
    SESSION_TIMEOUT,
    Replicas,
    health,
    leader_of,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_leader_leaves_a_live_replicas_cluster_alone_and_takes_it_over_when_it_dies(
    replicas: Replicas, zk_client: KazooClient, fresh_pg_url: URL
) -> None:
    c = replicas.start("c")
    wait_until("c to lead", lambda: leader_of(c) is c)
    b = replicas.start("b")  # next in line
    a = replicas.start("a")
    id_a, id_b = (health(m)["coordination"]["identifier"] for m in (a, b))
    members = f"{replicas.root}/members"
    wait_until("three members", lambda: len(zk_client.get_children(members)) == 3)

    client_a = a.client()
    cluster = client_a.create_cluster(
        ClusterCreate(name="owned", purpose="training", head=ResourceSpec(cpus=1))
    )
    # c steps down while a is starting Ray: b is elected and reconciles now.
    stopping = threading.Thread(target=c.kill, args=(signal.SIGTERM,))
    stopping.start()
    wait_until("b to lead", lambda: leader_of(a, b) is b, 60)
    stopping.join()
    reconciled = b.log.read_text()
    assert any(
        f"cluster {cluster.id}: {state} by live replica {id_a}, left to it" in reconciled
        for state in ("PENDING", "PROVISIONING")
    ), f"b was elected after the cluster got past PROVISIONING:\n{reconciled[-3000:]}"

    ready = client_a.wait_until_ready(cluster.id, timeout=READY_TIMEOUT)
    assert ready.state == "READY"
    states = [e.to_state for e in client_a.cluster_events(cluster.id)]
    assert states == ["PENDING", "PROVISIONING", "READY"], states
    engine = create_engine(fresh_pg_url)
    owner_sql = text("SELECT owner FROM clusters WHERE id = :id")

    def owner() -> str | None:
        with engine.connect() as connection:
            value: str | None = connection.execute(owner_sql, {"id": cluster.id}).scalar()
            return value

    try:
        assert owner() == id_a

        a.kill()  # SIGKILL: its member node goes when ZooKeeper expires the session
        wait_until("a's member node to go", lambda: id_a not in zk_client.get_children(members))
        wait_until("b to take the cluster over", lambda: owner() == id_b, SESSION_TIMEOUT + 30)
        assert f"cluster {cluster.id}: its owner {id_a} is gone" in b.log.read_text()
        client_b = b.client()
        assert client_b.get_cluster(cluster.id).state == "READY"
        path = f"{replicas.root}/clusters/training/{cluster.id}"
        session_b = int(health(b)["coordination"]["session_id"], 16)
        wait_until(
            "the cluster's znode under b's session",
            lambda: (stat := zk_client.exists(path)) and stat.ephemeralOwner == session_b,
        )
        assert client_b.get_cluster(cluster.id).state == "READY"
    finally:
        engine.dispose()
