"""Warm pools on the fake backend: refill, hand-over, quota, eviction, drain, events.

The same paths run against real Ray, Postgres and ZooKeeper in
tests/integration/clusters/test_pools.py and tests/integration/coordination/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rayline.clusters import pool_store
from rayline.clusters.lifecycle import LifecycleManager
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.pool_keeper import PoolKeeper
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.service import ClusterService
from rayline.metadata.enums import ClusterState
from tests.unit.clusters.api.fakes import FakeBackend, fake_service

S = ClusterState


@dataclass
class Pools:
    service: ClusterService
    provisioner: Provisioner
    keeper: PoolKeeper

    def fill(self) -> list[str]:
        """Refill until every pool is full; the ids started."""
        started = []
        while (cluster_id := self.keeper.fill_once()) is not None:
            started.append(cluster_id)
        return started

    def create(self, name: str = "r", **fields: Any) -> tuple[str, ClusterState]:
        body = {"name": name, "purpose": "training", "head": {"cpus": 2}, **fields}
        cluster, created = self.service.create(ClusterCreate.model_validate(body), backend="fake")
        assert created
        if cluster.state == S.PENDING:
            self.provisioner.provision(cluster.id).result(timeout=10)
        return cluster.id, ClusterState(cluster.state)

    def state(self, cluster_id: str) -> ClusterState:
        return ClusterState(self.service.get(cluster_id).state)

    def reasons(self, cluster_id: str) -> list[str]:
        return [e.reason or "" for e in self.service.events(cluster_id)]


def _pools(home: Path, **settings: Any) -> Iterator[Pools]:
    options: dict[str, Any] = {"pool": "training:1", "pool_refill_delay_seconds": 0, **settings}
    config, service, engine = fake_service(home, **options)
    FakeBackend.live, FakeBackend.busy = {}, set()
    provisioner = Provisioner(
        service=service, backend=FakeBackend(config), settings=config, metrics=ManagerMetrics()
    )
    keeper = PoolKeeper(
        service=service, provisioner=provisioner, backend_name="fake", settings=config
    )
    yield Pools(service, provisioner, keeper)
    provisioner.shutdown()
    engine.dispose()


@pytest.fixture
def pools(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pools]:
    """Pools on the fake backend; ``indirect`` parametrization overrides settings."""
    yield from _pools(tmp_path, **getattr(request, "param", {}))


def with_settings(**settings: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("pools", [settings], indirect=True)


def test_refill_starts_a_pooled_cluster_that_waits_as_pooled(pools: Pools) -> None:
    (pooled,) = pools.fill()
    cluster = pools.service.get(pooled)
    assert (cluster.state, cluster.pool, cluster.adopted_at) == (S.POOLED, "training", None)
    assert "warm pool 'training'" in pools.reasons(pooled)[1]
    assert pools.keeper.fill_once() is None  # full


def test_a_matching_request_adopts_the_pooled_cluster_ready_at_once(pools: Pools) -> None:
    (pooled,) = pools.fill()
    adopted, state = pools.create("mine", labels={"team": "x"}, ttl_seconds=60)
    assert (adopted, state) == (pooled, S.READY)
    cluster = pools.service.get(adopted)
    assert cluster.name == "mine" and cluster.ttl_seconds == 60
    assert cluster.labels == {"team": "x", "rayline.pool": "training"}
    assert cluster.adopted_at is not None and cluster.ready_at is not None
    events = pools.service.events(adopted)
    assert (events[-1].from_state, events[-1].to_state) == (S.POOLED, S.READY)
    assert "adopted from warm pool 'training'" in (events[-1].reason or "")


def test_the_pool_refills_after_an_adoption_with_a_fresh_cluster(pools: Pools) -> None:
    (first,) = pools.fill()
    pools.create()
    (second,) = pools.fill()
    assert second != first and pools.state(second) == S.POOLED


def test_an_adopted_cluster_is_never_handed_out_again(pools: Pools) -> None:
    pools.fill()
    first, _ = pools.create("a")
    second, state = pools.create("b")  # pool empty now: starts cold
    assert second != first and state == S.PENDING
    assert pools.state(second) == S.READY and pools.service.get(second).pool is None
    assert "cold start: pool 'training' has no fresh cluster free" in pools.reasons(second)[0]


def test_a_request_of_another_shape_starts_cold(pools: Pools) -> None:
    pools.fill()
    cold, state = pools.create(head={"cpus": 1})
    assert state == S.PENDING and pools.service.get(cold).pool is None
    assert "cold start: no warm pool has this shape" in pools.reasons(cold)[0]
    assert len(pools.service.list_clusters(state=S.POOLED)) == 1  # untouched


def test_a_request_adopts_a_pooled_cluster_still_starting_and_it_ends_ready(pools: Pools) -> None:
    with pools.service.creating() as session:
        shape = pools.service.pool_shapes[0]
        pending = pool_store.new_pooled(session, shape, backend="fake", owner="me").id
    adopted, state = pools.create()
    assert (adopted, state) == (pending, S.PENDING)
    pools.provisioner.provision(pending).result(timeout=10)
    assert pools.state(pending) == S.READY  # not POOLED: it is somebody's now
    assert "adopted from pool 'training' while starting" in " ".join(pools.reasons(pending))


@with_settings(pool="training:2", max_live_clusters=10)
def test_eight_concurrent_creates_get_eight_distinct_clusters(pools: Pools) -> None:
    warm = set(pools.fill())
    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(lambda i: pools.create(f"c{i}"), range(8)))
    ids = [cluster_id for cluster_id, _ in results]
    assert len(set(ids)) == 8
    assert warm <= set(ids)  # both warm ones were handed out, each once
    assert sum(state == S.READY for _, state in results) == 2


@with_settings(pool="training:2", max_live_clusters=2)
def test_pooled_clusters_count_against_the_quota(pools: Pools) -> None:
    assert len(pools.fill()) == 2
    pools.create()  # adopts one: still two live
    assert pools.keeper.fill_once() is None  # no slot for a refill


@with_settings(pool="training:1", max_live_clusters=1)
def test_a_request_that_finds_the_quota_full_of_spares_evicts_one(pools: Pools) -> None:
    (spare,) = pools.fill()
    cold, _ = pools.create(head={"cpus": 1})
    pools.provisioner.shutdown()  # waits for the eviction's teardown
    assert pools.state(spare) == S.TERMINATED and spare not in FakeBackend.live
    assert "evicted from its pool" in " ".join(pools.reasons(spare))
    assert pools.state(cold) == S.READY


@with_settings(pool="training:2")
def test_drain_ends_every_fresh_pooled_cluster_and_nothing_else(pools: Pools) -> None:
    spares = pools.fill()
    adopted, _ = pools.create()
    drained = pools.keeper.drain()
    assert set(drained) == set(spares) - {adopted}
    assert all(pools.state(c) == S.TERMINATED for c in drained)
    assert pools.state(adopted) == S.READY and adopted in FakeBackend.live
    assert pools.keeper.fill_once() is None  # stopped: no refill after a drain


def test_refill_waits_while_a_request_cluster_is_starting(pools: Pools) -> None:
    cluster, _ = pools.service.create(
        ClusterCreate(name="cold", purpose="training", head={"cpus": 1}), backend="fake"
    )
    assert pools.keeper.fill_once() is None  # the request goes first
    pools.provisioner.provision(cluster.id).result(timeout=10)
    assert pools.keeper.fill_once() is not None


@with_settings(pool_refill_delay_seconds=3600)
def test_refill_waits_the_delay_after_an_adoption(pools: Pools) -> None:
    assert pools.fill()  # no adoption yet: no delay
    pools.create()
    assert pools.keeper.fill_once() is None


def _lifecycle(pools: Pools) -> LifecycleManager:
    settings = pools.service._settings  # the same settings the fixture built
    return LifecycleManager(
        service=pools.service,
        provisioner=pools.provisioner,
        backend=FakeBackend(settings),
        settings=settings,
        metrics=ManagerMetrics(),
    )


@with_settings(default_idle_timeout_seconds=1, default_ttl_seconds=1)
def test_a_pooled_cluster_is_not_reaped_while_pooled_but_is_once_adopted(pools: Pools) -> None:
    (spare,) = pools.fill()
    lifecycle = _lifecycle(pools)
    time.sleep(1.2)  # past the TTL and idle timeout the manager applies to requests
    lifecycle.run_once()
    assert pools.state(spare) == S.POOLED
    adopted, _ = pools.create(ttl_seconds=3600, idle_timeout_seconds=1)
    lifecycle.run_once()
    assert pools.state(adopted) == S.READY  # its idle time counts from the adoption
    time.sleep(1.2)
    lifecycle.run_once()
    assert pools.state(adopted) in (S.TERMINATING, S.TERMINATED)
    assert "idle for" in " ".join(pools.reasons(adopted))


def test_a_pooled_cluster_whose_processes_died_fails_and_is_replaced(pools: Pools) -> None:
    (spare,) = pools.fill()
    FakeBackend.live.pop(spare)  # its head died
    _lifecycle(pools).run_once()
    pools.service.wait_for(spare, S.FAILED, timeout=10)
    assert pools.state(spare) == S.FAILED
    assert "pooled cluster unhealthy" in pools.reasons(spare)[-1]
    assert pools.service.get(spare).adopted_at is None
    assert pools.keeper.fill_once() not in (None, spare)
