"""Provisioner teardown paths that need no Ray: clusters without a stored handle.

A replica can die between starting Ray and storing the handle, and a delete can
reach one replica while another is still starting the cluster. The provisioner
then asks the backend to release the cluster by its id, and a provision that
finds its cluster deleted meanwhile stops what it started itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from rayline.clusters.backends.base import ClusterHandle, ClusterRequest
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.service import ClusterService
from rayline.metadata.enums import ClusterState
from tests.unit.clusters.api.fakes import FakeBackend, fake_service


class RecordingBackend(FakeBackend):
    """The fake backend, also recording releases by id; optionally deleted mid-provision."""

    released: ClassVar[list[str]] = []
    on_provision: ClassVar[list[object]] = []

    def provision(self, request: ClusterRequest) -> ClusterHandle:
        for hook in self.on_provision:
            hook(request.cluster_id)  # type: ignore[operator]
        return super().provision(request)

    def release_unrecorded(self, cluster_id: str) -> None:
        self.released.append(cluster_id)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[ClusterService, Provisioner]]:
    settings, service, engine = fake_service(tmp_path)
    RecordingBackend.live, RecordingBackend.released, RecordingBackend.on_provision = {}, [], []
    provisioner = Provisioner(
        service=service,
        backend=RecordingBackend(settings),
        settings=settings,
        metrics=ManagerMetrics(),
    )
    yield service, provisioner
    provisioner.shutdown()
    engine.dispose()


def _create(service: ClusterService) -> str:
    cluster, _ = service.create(ClusterCreate(name="c", purpose="training"), backend="fake")
    return cluster.id


@pytest.mark.parametrize(
    ("end", "state"),
    [("terminate", ClusterState.TERMINATED), ("fail", ClusterState.FAILED)],
)
def test_ending_a_cluster_without_a_handle_releases_it_by_id(
    parts: tuple[ClusterService, Provisioner], end: str, state: ClusterState
) -> None:
    service, provisioner = parts
    cluster_id = _create(service)  # PENDING: nothing recorded yet
    if end == "terminate":
        service.request_termination(cluster_id, "deleted")
        provisioner.terminate(cluster_id).result(timeout=10)
    else:
        provisioner.fail(cluster_id, "lost: its owner died before recording a handle").result(10)

    assert RecordingBackend.released == [cluster_id]
    assert service.get(cluster_id).state == state


def test_a_provision_deleted_meanwhile_elsewhere_stops_what_it_started(
    parts: tuple[ClusterService, Provisioner],
) -> None:
    service, provisioner = parts
    cluster_id = _create(service)
    # Another replica takes the delete while this one is inside backend.provision.
    RecordingBackend.on_provision.append(
        lambda cid: service.request_termination(str(cid), "deleted through replica B")
    )

    provisioner.provision(cluster_id).result(timeout=10)

    assert cluster_id not in RecordingBackend.live  # terminated through the fresh handle
    assert service.get(cluster_id).state == ClusterState.TERMINATING
