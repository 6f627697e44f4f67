"""Cluster ownership across replicas, on the fake backend and SQLite.

A cluster records the replica that provisions or terminates it; the leader's
reconciliation leaves it to that replica while it lives and takes it over once it
is gone. Replicas are played by a coordinator whose membership the test sets; the
same paths run with real ZooKeeper and two manager processes in
tests/integration/coordination/test_ownership.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayline.clusters.provisioner import to_backend_request
from rayline.clusters.runtime import ManagerRuntime
from rayline.clusters.schemas import ClusterCreate
from rayline.coordination import LocalCoordinator
from rayline.metadata.enums import ClusterState
from tests.unit.clusters.api.conftest import client, fake_backend, settings
from tests.unit.clusters.api.fakes import FakeBackend, runtime, spec, wait_state

__all__ = ["client", "fake_backend", "settings"]  # fixtures used here

OTHER = "host-a:8765:4242-abcdef"  # the member id of another replica


class Replicas(LocalCoordinator):
    """This replica plus others that are members while listed in ``alive``."""

    enabled = True

    def __init__(self, identifier: str, alive: set[str]) -> None:
        super().__init__(identifier)
        self.alive = alive

    def member_alive(self, identifier: str) -> bool:
        return identifier == self.identifier or identifier in self.alive


@pytest.fixture
def alive(client: TestClient) -> set[str]:
    """Members other than this replica; this replica coordinates with them from now on."""
    members = {OTHER}
    runtime(client).service.coordinator = Replicas("host-b:8766:99-123456", members)
    return members


def other_replicas_cluster(
    rt: ManagerRuntime, state: ClusterState, *, handle: bool = False, **fields: Any
) -> str:
    """A cluster another replica (OTHER) is working on, in ``state``."""
    cluster, _ = rt.service.create(ClusterCreate.model_validate(spec(**fields)), backend="fake")
    if state != ClusterState.PENDING:
        rt.service.move(cluster.id, ClusterState.PROVISIONING, "starting (on replica a)")
    if handle:  # its Ray start returned: the handle is stored
        stored = rt.backend.provision(to_backend_request(cluster))
        rt.service.update(cluster.id, backend_handle=stored.to_json())
    if state == ClusterState.TERMINATING:
        rt.service.move(cluster.id, ClusterState.TERMINATING, "deleted (on replica a)")
    rt.service.update(cluster.id, owner=OTHER)
    return cluster.id


def state_of(client: TestClient, cluster_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/clusters/{cluster_id}").json()
    return body


def owner_of(rt: ManagerRuntime, cluster_id: str) -> str | None:
    return rt.service.get(cluster_id).owner


def test_requests_record_the_replica_that_does_the_work(client: TestClient) -> None:
    rt = runtime(client)
    me = rt.service.coordinator.identifier
    assert me.split(":")[1] == str(rt.settings.api_port)  # host:port:pid-random
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    assert owner_of(rt, cluster_id) == me
    rt.service.update(cluster_id, owner=OTHER)
    client.delete(f"/v1/clusters/{cluster_id}")
    assert owner_of(rt, cluster_id) == me  # whoever tears it down owns it now
    assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"


def test_reconcile_leaves_a_live_replicas_provisioning_cluster_alone(
    client: TestClient, alive: set[str]
) -> None:
    rt = runtime(client)
    starting = other_replicas_cluster(rt, ClusterState.PROVISIONING)  # no handle yet
    rt.lifecycle.reconcile()  # what a newly elected leader does
    rt.lifecycle.run_once()
    assert state_of(client, starting)["state"] == "PROVISIONING"
    assert owner_of(rt, starting) == OTHER


def test_a_gone_owners_provisioning_cluster_is_resumed_when_its_ray_runs(
    client: TestClient, alive: set[str], fake_backend: type[FakeBackend]
) -> None:
    rt = runtime(client)
    started = other_replicas_cluster(rt, ClusterState.PROVISIONING, handle=True)
    rt.lifecycle.run_once()
    assert state_of(client, started)["state"] == "PROVISIONING"

    alive.clear()  # replica a died: its member node is gone
    rt.lifecycle.run_once()
    ready = wait_state(client, started)
    assert ready["state"] == "READY"
    assert owner_of(rt, started) == rt.service.coordinator.identifier


def test_a_gone_owners_cluster_without_a_handle_is_failed_and_cleaned(
    client: TestClient, alive: set[str]
) -> None:
    rt = runtime(client)
    lost = other_replicas_cluster(rt, ClusterState.PROVISIONING)
    alive.clear()
    rt.lifecycle.run_once()
    failed = wait_state(client, lost, "FAILED")
    assert failed["state"] == "FAILED"
    assert f"from replica {OTHER}, which is gone" in failed["reason"]


def test_pending_and_terminating_clusters_wait_for_their_owner_then_are_finished(
    client: TestClient, alive: set[str], fake_backend: type[FakeBackend]
) -> None:
    rt = runtime(client)
    pending = other_replicas_cluster(rt, ClusterState.PENDING)
    ending = other_replicas_cluster(rt, ClusterState.TERMINATING, handle=True, name="ending")
    rt.lifecycle.reconcile()
    rt.lifecycle.run_once()
    assert state_of(client, pending)["state"] == "PENDING"
    assert state_of(client, ending)["state"] == "TERMINATING"

    alive.clear()
    rt.lifecycle.run_once()
    assert wait_state(client, pending)["state"] == "READY"  # provisioned by this replica
    assert wait_state(client, ending, "TERMINATED")["state"] == "TERMINATED"
    assert ending not in fake_backend.live


def test_a_ready_cluster_of_a_gone_owner_stays_ready_under_the_new_owner(
    client: TestClient, alive: set[str], fake_backend: type[FakeBackend]
) -> None:
    rt = runtime(client)
    cluster_id = other_replicas_cluster(rt, ClusterState.PROVISIONING, handle=True)
    rt.service.move(cluster_id, ClusterState.READY, "GCS healthy (on replica a)")
    alive.clear()
    rt.lifecycle.run_once()
    assert state_of(client, cluster_id)["state"] == "READY"
    assert owner_of(rt, cluster_id) == rt.service.coordinator.identifier


def test_single_manager_takes_over_everything_an_earlier_run_left(client: TestClient) -> None:
    rt = runtime(client)  # LocalCoordinator: no other replica can be alive
    assert not rt.service.coordinator.enabled
    lost = other_replicas_cluster(rt, ClusterState.PROVISIONING)
    rt.lifecycle.reconcile()
    failed = wait_state(client, lost, "FAILED")
    assert failed["state"] == "FAILED" and "lost" in failed["reason"]
