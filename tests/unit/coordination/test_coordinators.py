"""Single-manager coordination, and the ZooKeeper coordinator against an in-memory fake."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.coordination import (
    ClusterEntry,
    CoordinationUnavailableError,
    LocalCoordinator,
    RegistrySnapshot,
    ServiceEntry,
    create_coordinator,
    new_member_id,
)
from rayline.coordination.zookeeper import ZooKeeperCoordinator
from tests.unit.coordination.fakes import FakeZooKeeper

ROOT = "/rl"


def test_without_hosts_the_manager_coordinates_with_nobody() -> None:
    coordinator = create_coordinator(Settings())
    assert isinstance(coordinator, LocalCoordinator)
    events: list[str] = []
    coordinator.lead(lambda: events.append("elected"), lambda: events.append("revoked"))
    with coordinator.lock("cluster-quota"):
        pass
    coordinator.stop()
    assert events == ["elected", "revoked"]
    assert coordinator.status() == {"mode": "single", "degraded": False, "leader": True}


def cluster(cid: str, purpose: str = "training") -> ClusterEntry:
    return ClusterEntry(cid, cid, purpose, "READY", "127.0.0.1:1", "http://127.0.0.1:2", None)


def endpoint(sid: int, version: int, url: str) -> ServiceEntry:
    return ServiceEntry(sid, "iris", version, url, None, "healthy")


def coordinator_on(zk: FakeZooKeeper, snapshot: list[RegistrySnapshot]) -> ZooKeeperCoordinator:
    settings = Settings(zookeeper_hosts="127.0.0.1:1", zookeeper_root=ROOT)
    coordinator = ZooKeeperCoordinator(settings, client=zk, identifier="test")
    coordinator._snapshot = lambda: snapshot[0]
    return coordinator


def test_registry_follows_the_metadata_store() -> None:
    zk = FakeZooKeeper(session=7)
    live = [
        RegistrySnapshot(
            [cluster("c1"), cluster("c2", "serving")],
            [endpoint(1, 1, "http://127.0.0.1:9001/"), endpoint(2, 1, "http://127.0.0.1:9000/")],
        )
    ]
    coordinator = coordinator_on(zk, live)
    coordinator.sync_registry()
    assert zk.exists(f"{ROOT}/clusters/training/c1").ephemeralOwner == 7  # type: ignore[union-attr]
    assert json.loads(zk.get(f"{ROOT}/clusters/serving/c2")[0])["head_address"] == "127.0.0.1:1"
    body = json.loads(zk.get(f"{ROOT}/services/iris/1")[0])
    assert [e["url"] for e in body["endpoints"]] == [
        "http://127.0.0.1:9000/",
        "http://127.0.0.1:9001/",
    ]

    writes = zk.writes
    coordinator.sync_registry()
    assert zk.writes == writes  # nothing changed, nothing written

    live[0] = RegistrySnapshot([cluster("c2", "serving")], [])
    coordinator.sync_registry()
    assert zk.exists(f"{ROOT}/clusters/training/c1") is None
    assert zk.exists(f"{ROOT}/services/iris/1") is None
    assert zk.exists(f"{ROOT}/clusters/serving/c2") is not None


def test_entries_of_a_dead_owner_come_back_under_a_live_session() -> None:
    zk = FakeZooKeeper(session=1)
    coordinator = coordinator_on(zk, [RegistrySnapshot([cluster("c1")], [])])
    coordinator.sync_registry()
    zk.expire(1)
    zk.session = 2
    coordinator.sync_registry()
    assert zk.exists(f"{ROOT}/clusters/training/c1").ephemeralOwner == 2  # type: ignore[union-attr]


def test_degraded_refuses_locks_and_says_so() -> None:
    zk = FakeZooKeeper(connected=False)
    coordinator = coordinator_on(zk, [RegistrySnapshot([], [])])
    status = coordinator.status()
    assert status["degraded"] is True and status["leader"] is False
    with pytest.raises(CoordinationUnavailableError, match="degraded"), coordinator.lock("x"):
        pass
    zk.fire("CONNECTED")
    assert coordinator.status()["degraded"] is False
    zk.fire("SUSPENDED")
    assert coordinator.status()["state"] == "suspended"
    assert coordinator.status()["degraded"] is True


def test_a_bad_config_node_keeps_the_last_good_values() -> None:
    zk = FakeZooKeeper()
    coordinator = coordinator_on(zk, [RegistrySnapshot([], [])])
    coordinator._on_config(b'{"max_live_clusters": 3}', None)
    coordinator._on_config(b'{"max_live_clusters": "lots"}', None)
    assert coordinator.config.effective()["max_live_clusters"] == 3


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (600, 120)),
        ({"ttl_seconds": 30}, (30, 120)),
        ({"ttl_seconds": 30, "idle_timeout_seconds": 5}, (30, 5)),
    ],
)
def test_shared_defaults_fill_only_what_the_request_left_unset(
    fields: dict[str, Any], expected: tuple[int, int]
) -> None:
    settings = Settings(default_ttl_seconds=600, default_idle_timeout_seconds=120)
    service = ClusterService(sessions=sessionmaker(), settings=settings)
    spec = ClusterCreate(name="x", purpose="training", **fields)
    filled = service._with_shared_defaults(spec)
    assert (filled.ttl_seconds, filled.idle_timeout_seconds) == expected


def test_each_replica_is_a_member_while_its_session_lives() -> None:
    zk = FakeZooKeeper(session=1)
    a = coordinator_on(zk, [RegistrySnapshot([], [])])
    a._ensure_member()
    members = f"{ROOT}/members"
    assert zk.get_children(members) == ["test"]
    assert zk.exists(f"{members}/test").ephemeralOwner == 1  # type: ignore[union-attr]
    writes = zk.writes
    a._ensure_member()
    assert zk.writes == writes  # once per session

    assert a.member_alive("test")
    assert not a.member_alive("another:8765:1-abcdef")
    zk.create(f"{members}/another:8765:1-abcdef", b"{}", ephemeral=True)
    assert a.member_alive("another:8765:1-abcdef")

    zk.expire(1)  # our session ended; the next one must register again
    zk.session, zk.client_id = 2, (2, b"")
    assert not a.member_alive("another:8765:1-abcdef")
    a._ensure_member()
    assert zk.exists(f"{members}/test").ephemeralOwner == 2  # type: ignore[union-attr]


def test_membership_unknown_while_degraded_leaves_clusters_to_their_owner() -> None:
    coordinator = coordinator_on(FakeZooKeeper(connected=False), [RegistrySnapshot([], [])])
    assert coordinator.member_alive("anyone")


def test_member_ids_name_host_port_and_process_and_are_never_reused() -> None:
    first, second = new_member_id(8765), new_member_id(8765)
    assert first != second
    host, port, rest = first.split(":")
    assert host == socket.gethostname()
    assert port == "8765" and rest.startswith(f"{os.getpid()}-")
    assert LocalCoordinator().member_alive(first) is False
