"""Registration, discovery and shared config across two real replicas (no Ray needed)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, WatchedEvent
from sqlalchemy import URL, create_engine

from rayline.clusters.schemas import ServiceCreate
from rayline.config import Settings
from rayline.coordination.discovery import Discovery, live_endpoints
from rayline.coordination.shared_config import read_shared, update_shared
from rayline.metadata.registry import ModelRegistry
from tests.integration.coordination.conftest import (
    SESSION_TIMEOUT,
    Replicas,
    ZooKeeper,
    health,
    leader_of,
    rayline_config,
    wait_for_quota,
    wait_until,
)

pytestmark = pytest.mark.integration


def _session(manager: Any) -> int:
    return int(health(manager)["coordination"]["session_id"], 16)


def test_endpoint_znode_is_ephemeral_and_discovery_agrees_with_v1_services(
    replicas: Replicas, zookeeper: ZooKeeper, zk_client: KazooClient, fresh_pg_url: URL
) -> None:
    a = replicas.start("a")
    wait_until("a to lead", lambda: leader_of(a) is a)
    b = replicas.start("b")
    engine = create_engine(fresh_pg_url)
    try:
        for _ in range(2):
            ModelRegistry().register_version(
                engine, name="iris", artifact_uri="file:///nowhere", sha256="0" * 64
            )
    finally:
        engine.dispose()
    client_b = b.client()
    old = client_b.register_service(
        ServiceCreate(model_name="iris", model_version=1, url="http://127.0.0.1:9001/")
    )
    new = client_b.register_service(
        ServiceCreate(model_name="iris", model_version=2, url="http://127.0.0.1:9002/")
    )
    path = f"{replicas.root}/services/iris/2"
    # An ephemeral node of a replica's session: the one that took the request, or the
    # leader, whose periodic sync of the registry may get there first.
    stat = wait_until("the endpoint znode", lambda: zk_client.exists(path))
    by_session = {_session(a): a, _session(b): b}
    assert stat.ephemeralOwner in by_session

    settings = Settings(zookeeper_hosts=zookeeper.address, zookeeper_root=replicas.root)
    with Discovery.from_settings(settings) as discovery:
        listed = client_b.list_services("iris").data
        wait_until(
            "discovery to agree with GET /v1/services",
            lambda: (
                [(s.id, s.url, s.model_version) for s in discovery.services("iris")]
                == [(s.id, s.url, s.model_version) for s in listed]
            ),
        )
        assert [s.model_version for s in discovery.services("iris")] == [2, 1]
        # One-shot lookups: from ZooKeeper, or from the REST API without it; same answer.
        rest = Settings(cluster_manager_url=b.url, api_token=b.token)
        assert live_endpoints("iris", settings) == live_endpoints("iris", rest)

        # The owner dies without a goodbye: its session expires and the node with it;
        # the leader registers the still-live endpoint again under its own session.
        deleted = threading.Event()

        def watch(event: WatchedEvent) -> None:
            if event.type == EventType.DELETED:
                deleted.set()

        # The owner is read where the watch is set: a replica whose registry sync read
        # the store just before the registration may have deleted the first node and
        # the leader made it again under its own session since it was first seen.
        stat = zk_client.exists(path, watch=watch)
        assert stat is not None and stat.ephemeralOwner in by_session
        owner = by_session[stat.ephemeralOwner]
        survivor = b if owner is a else a
        owner.kill()
        wait_until("the dead owner's znode to vanish", deleted.is_set, SESSION_TIMEOUT + 30)
        wait_until("the survivor to lead", lambda: leader_of(survivor) is survivor)
        survivor_session = _session(survivor)
        wait_until(
            "the leader to register it again",
            lambda: (
                (s := zk_client.exists(path)) is not None and s.ephemeralOwner == survivor_session
            ),
        )

        # Deregistering (through any replica) removes it; discovery follows by watch.
        survivor.client().deregister_service(new.id)
        wait_until("the znode to go", lambda: zk_client.exists(path) is None)
        wait_until("discovery to follow", lambda: [s.id for s in discovery.services()] == [old.id])


def test_config_change_reaches_both_replicas_without_restart(
    replicas: Replicas, zk_client: KazooClient
) -> None:
    a = replicas.start("a")
    b = replicas.start("b")
    pids = {a.process.pid, b.process.pid}  # type: ignore[union-attr]
    # The CLI once (it is slow to import); the same library call for the rest.
    assert rayline_config(replicas, "set", "max_live_clusters", "5") == {"max_live_clusters": 5}
    zk_client.ensure_path(f"{replicas.root}/config")
    update_shared(zk_client, f"{replicas.root}/config", {"default_ttl_seconds": 600})
    for manager in (a, b):
        wait_until(
            f"{manager.url} to apply the shared config",
            lambda m=manager: (
                health(m)["coordination"]["effective_config"]
                == {
                    "max_live_clusters": 5,
                    "default_ttl_seconds": 600,
                    "default_idle_timeout_seconds": None,
                }
            ),
        )
    assert read_shared(zk_client, f"{replicas.root}/config").max_live_clusters == 5
    update_shared(zk_client, f"{replicas.root}/config", {"max_live_clusters": None})
    wait_for_quota(8, a, b)
    assert {a.process.pid, b.process.pid} == pids  # type: ignore[union-attr]
    assert all(m.process.poll() is None for m in (a, b))  # type: ignore[union-attr]
