"""Leader election between two real replicas, without Ray (the reaping case is in
test_leader_and_quota.py)."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from tests.integration.coordination.conftest import (
    SESSION_TIMEOUT,
    Replicas,
    leader_of,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_exactly_one_leader_and_a_killed_leader_is_replaced(
    replicas: Replicas, zk_client: KazooClient
) -> None:
    a = replicas.start("a")
    b = replicas.start("b")
    first = wait_until("exactly one leader", lambda: leader_of(a, b))
    other = b if first is a else a
    election = f"{replicas.root}/election/lifecycle"
    # Both campaign: each replica's election thread adds its node once connected, which
    # /healthz (and the other's leadership) does not wait for.
    wait_until("both replicas to campaign", lambda: len(zk_client.get_children(election)) == 2)

    first.kill()  # SIGKILL: its session, and with it its election node, must expire
    killed = time.monotonic()
    wait_until("the other replica to lead", lambda: leader_of(other) is other, SESSION_TIMEOUT + 30)
    print(f"fail-over took {time.monotonic() - killed:.1f}s (session timeout {SESSION_TIMEOUT}s)")
    assert len(zk_client.get_children(election)) == 1
    assert "elected leader" in other.log.read_text()

    # The dead replica comes back as a follower; leadership stays where it is.
    back = replicas.start("a2" if first is a else "b2")
    wait_until("the new replica to campaign", lambda: len(zk_client.get_children(election)) == 2)
    assert leader_of(other, back) is other
