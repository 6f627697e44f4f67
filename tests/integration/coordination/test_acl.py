"""With a ZooKeeper password, only the managers may change Rayline's znodes (real ZooKeeper)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from sqlalchemy import URL

from tests.integration.coordination.conftest import (
    Replicas,
    ZooKeeper,
    leader_of,
    make_replicas,
    wait_until,
)

pytestmark = pytest.mark.integration

PASSWORD = secrets.token_urlsafe(24)


@pytest.fixture
def guarded_replicas(zookeeper: ZooKeeper, fresh_pg_url: URL, tmp_path: Path) -> Iterator[Replicas]:
    """Replicas whose clients authenticate as `rayline` and create creator-only znodes."""
    yield from make_replicas(zookeeper.address, fresh_pg_url, tmp_path, zookeeper_password=PASSWORD)


def test_other_clients_read_the_registry_but_cannot_change_it(
    guarded_replicas: Replicas, zookeeper: ZooKeeper, zk_client: KazooClient
) -> None:
    a = guarded_replicas.start("a")
    wait_until("a to lead", lambda: leader_of(a) is a)
    root = guarded_replicas.root
    election = f"{root}/election/lifecycle"
    contenders = wait_until("an election node", lambda: zk_client.get_children(election))

    # Discovery needs no password: reading stays open.
    assert "election" in zk_client.get_children(root)
    assert zk_client.get(f"{election}/{contenders[0]}")[0] is not None

    with pytest.raises(NoAuthError):  # take the leadership away
        zk_client.delete(f"{election}/{contenders[0]}")
    with pytest.raises(NoAuthError):  # plant a cluster or endpoint entry
        zk_client.create(f"{root}/election/evil", b"{}")
    with pytest.raises(NoAuthError):  # rewrite the root's children
        zk_client.create(f"{root}/config-evil", b"{}")
    assert leader_of(a) is a  # still leading

    # The managers' own user may.
    owner = KazooClient(hosts=zookeeper.address, auth_data=[("digest", f"rayline:{PASSWORD}")])
    owner.start(timeout=20)
    try:
        owner.create(f"{root}/election/probe", b"{}")
        owner.delete(f"{root}/election/probe")
    finally:
        owner.stop()
        owner.close()
