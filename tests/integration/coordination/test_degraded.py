"""ZooKeeper goes away: reads keep working, degraded is reported, all recovers after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from rayline.coordination.shared_config import update_shared
from tests.integration.coordination.conftest import (
    Replicas,
    ZooKeeper,
    health,
    leader_of,
    make_replicas,
    start_zookeeper,
    wait_for_quota,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def own_zookeeper(tmp_path: Path) -> Iterator[ZooKeeper]:
    """A ZooKeeper this test may stop and start without disturbing the others."""
    zk = start_zookeeper(tmp_path / "zk")
    try:
        yield zk
    finally:
        zk.down()


@contextmanager
def replicas_on(zk: ZooKeeper, pg_url: URL, tmp_path: Path) -> Iterator[Replicas]:
    yield from make_replicas(zk.address, pg_url, tmp_path)  # type: ignore[misc]


def test_zookeeper_outage_degrades_then_recovers(
    own_zookeeper: ZooKeeper, fresh_pg_url: URL, tmp_path: Path
) -> None:
    with replicas_on(own_zookeeper, fresh_pg_url, tmp_path) as replicas:
        a = replicas.start("a")
        b = replicas.start("b")
        wait_until("one leader", lambda: leader_of(a, b))
        headers = {"Authorization": f"Bearer {a.token}"}

        own_zookeeper.down()
        for manager in (a, b):
            wait_until(
                f"{manager.url} to report degraded",
                lambda m=manager: health(m)["status"] == "degraded",
            )
            coordination = health(manager)["coordination"]
            assert coordination["degraded"] is True
            assert coordination["state"] in {"suspended", "lost"}
            # Reads keep working from Postgres.
            assert (
                httpx.get(f"{manager.url}/v1/clusters", headers=headers, timeout=10).status_code
                == 200
            )
            assert (
                httpx.get(f"{manager.url}/v1/services", headers=headers, timeout=10).status_code
                == 200
            )
            # A write that needs a distributed lock is refused clearly, not queued.
            refused = httpx.post(
                f"{manager.url}/v1/clusters",
                headers=headers,
                json={"name": "during-outage", "purpose": "training"},
                timeout=60,
            )
            assert refused.status_code == 503, refused.text
            assert "degraded" in refused.json()["detail"]
            assert refused.headers["Retry-After"]
        wait_until(
            "nobody to lead while ZooKeeper is away",
            lambda: not any(health(m)["coordination"]["leader"] for m in (a, b)),
        )
        for manager in (a, b):
            assert "coordination degraded" in manager.log.read_text()

        own_zookeeper.up()
        for manager in (a, b):
            wait_until(f"{manager.url} to recover", lambda m=manager: health(m)["status"] == "ok")
        wait_until("exactly one leader again", lambda: leader_of(a, b))
        # Watches are back too: a config change still reaches both replicas.
        with own_zookeeper.client() as zk:
            update_shared(zk, f"{replicas.root}/config", {"max_live_clusters": 4})
        wait_for_quota(4, a, b)
        for manager in (a, b):
            assert "coordination restored" in manager.log.read_text()
