"""Two concurrent deploys of one model leave exactly one LIVE version (real ZooKeeper).

The deployer's whole update (choose the version, start it, register its endpoint,
record it LIVE, retire the others) runs under the model's ``deploy-<model>`` lock.
Here two deployers, each with its own ZooKeeper session and its own Cluster
Manager replica, deploy two versions of one model at the same moment, on Postgres.
The server itself is the unit tests' fake runtime (a loopback ``/healthz``, slowed
down so that unlocked deploys would overlap): starting real Serve apps or
containers adds minutes and nothing to what is tested, which is the locked
critical section.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import URL, Engine

from rayline.config import Settings
from rayline.coordination.zookeeper import connect as zookeeper_connect
from rayline.metadata import Deployment, DeploymentMode, DeploymentStatus, create_engine_for
from rayline.serving import records
from rayline.serving.deployer import Deployer
from rayline.serving.runtimes import Started, StartRequest
from rayline.storage import open_store
from tests.integration.coordination.conftest import Replicas, ZooKeeper, wait_until
from tests.unit.serving.fakes import FakeRuntime
from tests.unit.serving.model_factory import publish_iris

pytestmark = pytest.mark.integration

START_SECONDS = 1.5  # how long starting a server takes: unlocked deploys would overlap


class SlowRuntime(FakeRuntime):
    """The fake runtime, taking a while to start each server; notes what else was going on."""

    engine: Engine | None = None
    seen: dict[str, dict[str, str]] = {}  # noqa: RUF012 (set per test)

    def start(self, request: StartRequest) -> Started:
        assert self.engine is not None
        self.seen[request.deployment_id] = {
            row.id: str(row.status)
            for row in records.list_deployments(self.engine, model=request.served.name)
            if row.id != request.deployment_id
        }
        time.sleep(START_SECONDS)
        return super().start(request)


def test_two_concurrent_deploys_of_one_model_leave_exactly_one_live_version(
    replicas: Replicas,
    zookeeper: ZooKeeper,
    zk_client: KazooClient,
    fresh_pg_url: URL,
    tmp_path: Path,
) -> None:
    managers = [replicas.start("a"), replicas.start("b")]  # they also migrate the database
    settings = Settings(
        home=tmp_path / "home",
        database_url=fresh_pg_url.render_as_string(hide_password=False),
        artifact_uri=(tmp_path / "artifacts").as_uri(),
        serving_switch_grace_seconds=0,
        serving_start_timeout_seconds=10,
        zookeeper_hosts=zookeeper.address,
        zookeeper_root=replicas.root,
        zookeeper_session_timeout_seconds=4,
    )
    engine = create_engine_for(settings.database_url)
    try:
        store = open_store(settings.artifact_uri, settings)
        for variant in (0, 1):
            publish_iris(store, engine, tmp_path, name="iris", variant=variant)
        runtime = SlowRuntime()  # one host's engine, reached by both deploys
        runtime.engine, runtime.seen = engine, {}
        said: list[str] = []
        results: dict[str, Deployment] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def deploy(ref: str, manager_index: int) -> None:
            deployer = Deployer(
                settings=settings,
                engine=engine,
                manager=managers[manager_index].client(),
                mode=DeploymentMode.DOCKER,
                runtimes={DeploymentMode.DOCKER: runtime},
                progress=said.append,
            )
            barrier.wait()
            try:
                results[ref] = deployer.deploy(ref)
            except BaseException as err:
                errors.append(err)

        threads = [
            threading.Thread(target=deploy, args=(ref, i))
            for i, ref in enumerate(("iris:1", "iris:2"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert any(line.startswith("waiting for lock deploy-iris, held by") for line in said)

        rows = records.list_deployments(engine, model="iris")
        live = [r for r in rows if r.status == DeploymentStatus.LIVE]
        assert len(live) == 1, [(r.model_version, str(r.status)) for r in rows]
        [current] = live
        [other] = [r for r in rows if r.id != current.id]
        assert other.status == DeploymentStatus.STOPPED
        assert other.error is None
        # The one that took the lock second replaced the first, and their updates
        # did not interleave: when the second server started, the first was LIVE.
        first, second = sorted(results.values(), key=lambda d: d.created_at)
        assert current.id == second.id
        assert runtime.seen == {first.id: {}, second.id: {first.id: "LIVE"}}
        assert records.get_deployment(engine, first.id).status == DeploymentStatus.STOPPED
        assert runtime.started == [first.id, second.id]
        assert runtime.stopped == [first.id]
        assert set(runtime.servers) == {current.id}

        services = managers[0].client().list_services("iris").data
        assert [(s.deployment_id, s.model_version) for s in services] == [
            (current.id, current.model_version)
        ]
        versions = f"{replicas.root}/services/iris"
        wait_until(
            "one version of iris in ZooKeeper's registry",
            lambda: (
                zk_client.exists(versions)
                and zk_client.get_children(versions) == [str(current.model_version)]
            ),
        )
        for server in runtime.servers.values():
            server.shutdown()
            server.server_close()
    finally:
        engine.dispose()


def test_a_lock_whose_session_expires_is_reported_lost_and_free_for_others(
    zookeeper: ZooKeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rayline.coordination import locks

    clients: list[KazooClient] = []

    def recording_connect(settings: Settings, *, wait: float) -> KazooClient:
        client = zookeeper_connect(settings, wait=wait)
        clients.append(client)
        return client

    monkeypatch.setattr(locks, "connect", recording_connect)
    settings = Settings(
        zookeeper_hosts=zookeeper.address,
        zookeeper_root=f"/lease-{time.monotonic_ns()}",
        zookeeper_session_timeout_seconds=4,
    )
    with locks.held_lock(settings, "deploy-iris", timeout=5) as lease:
        assert not lease.lost
        # Expire the holder's session the way ZooKeeper does when a holder is cut off
        # for longer than its timeout: another connection takes the session and leaves.
        session_id, password = clients[0].client_id
        thief = KazooClient(hosts=zookeeper.address, client_id=(session_id, password))
        thief.start(timeout=20)
        thief.stop()
        thief.close()
        wait_until("the lease to be lost", lambda: lease.lost, timeout=30)
        # The lock went with the session: another deploy gets it at once.
        with locks.held_lock(settings, "deploy-iris", timeout=2) as other:
            assert not other.lost
