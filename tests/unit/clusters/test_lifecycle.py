"""Lifecycle passes against a fake backend: missed probes, recovery, death, idle reaping.

A live cluster whose probe times out once (a loaded host) stays READY; it turns
UNHEALTHY only after ``unhealthy_after_missed_probes`` misses in a row, recovers
when a probe answers again, and fails at once when its processes are dead. The
real-Ray paths (a killed head, TTL and idle reaping) are in
tests/integration/clusters/test_manager.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from rayline.clusters.backends.base import ClusterHandle, HealthReport
from rayline.clusters.lifecycle import LifecycleManager
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.service import ClusterService
from rayline.metadata.enums import ClusterState
from tests.unit.clusters.api.fakes import FakeBackend, fake_service


class SlowProbeBackend(FakeBackend):
    """The fake backend; clusters in ``unanswered`` are alive but their probe times out."""

    unanswered: ClassVar[set[str]] = set()

    def probe(self, handle: ClusterHandle, expected_nodes: int) -> HealthReport:
        if handle.cluster_id in self.unanswered and handle.cluster_id in self.live:
            return HealthReport(
                expected_nodes=expected_nodes, gcs_ok=True, reason="job API: timed out"
            )
        return super().probe(handle, expected_nodes)


@dataclass
class Parts:
    service: ClusterService
    lifecycle: LifecycleManager

    def ready_cluster(self, provisioner: Provisioner, **spec: object) -> str:
        cluster, _ = self.service.create(
            ClusterCreate.model_validate({"name": "c", "purpose": "training", **spec}),
            backend="fake",
        )
        provisioner.provision(cluster.id).result(timeout=10)
        assert self.service.get(cluster.id).state == ClusterState.READY
        return cluster.id

    def state(self, cluster_id: str) -> ClusterState:
        return ClusterState(self.service.get(cluster_id).state)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Parts, Provisioner]]:
    settings, service, engine = fake_service(
        tmp_path, unhealthy_after_missed_probes=2, unhealthy_grace_seconds=3600
    )
    SlowProbeBackend.live, SlowProbeBackend.unanswered, SlowProbeBackend.busy = {}, set(), set()
    backend = SlowProbeBackend(settings)
    metrics = ManagerMetrics()
    provisioner = Provisioner(service=service, backend=backend, settings=settings, metrics=metrics)
    lifecycle = LifecycleManager(
        service=service, provisioner=provisioner, backend=backend, settings=settings,
        metrics=metrics,
    )  # fmt: skip
    yield Parts(service, lifecycle), provisioner
    provisioner.shutdown()
    engine.dispose()


def test_one_missed_probe_keeps_a_cluster_ready_two_make_it_unhealthy_then_it_recovers(
    parts: tuple[Parts, Provisioner],
) -> None:
    p, provisioner = parts
    cluster_id = p.ready_cluster(provisioner)
    SlowProbeBackend.unanswered.add(cluster_id)

    p.lifecycle.run_once()
    assert p.state(cluster_id) == ClusterState.READY  # one miss: a loaded host, not a fault
    p.lifecycle.run_once()
    assert p.state(cluster_id) == ClusterState.UNHEALTHY
    reasons = [e.reason for e in p.service.events(cluster_id)]
    assert any("2 health checks failed: job API: timed out" in (r or "") for r in reasons)

    SlowProbeBackend.unanswered.clear()
    p.lifecycle.run_once()
    assert p.state(cluster_id) == ClusterState.READY
    # The count starts again after a recovery: one new miss is tolerated again.
    SlowProbeBackend.unanswered.add(cluster_id)
    p.lifecycle.run_once()
    assert p.state(cluster_id) == ClusterState.READY


def test_a_probe_that_answers_between_misses_resets_the_count(
    parts: tuple[Parts, Provisioner],
) -> None:
    p, provisioner = parts
    cluster_id = p.ready_cluster(provisioner)
    for _ in range(3):
        SlowProbeBackend.unanswered.add(cluster_id)
        p.lifecycle.run_once()
        SlowProbeBackend.unanswered.clear()
        p.lifecycle.run_once()
    assert p.state(cluster_id) == ClusterState.READY
    assert [e.to_state for e in p.service.events(cluster_id)][-1] == ClusterState.READY


def test_dead_processes_fail_the_cluster_at_the_first_probe(
    parts: tuple[Parts, Provisioner],
) -> None:
    p, provisioner = parts
    cluster_id = p.ready_cluster(provisioner)
    del SlowProbeBackend.live[cluster_id]  # the head was killed

    p.lifecycle.run_once()  # READY -> UNHEALTHY at once (dead), no second miss needed
    assert p.state(cluster_id) == ClusterState.UNHEALTHY
    p.lifecycle.run_once()  # dead: FAILED without waiting for the grace (in the background)
    assert p.service.wait_for(cluster_id, ClusterState.FAILED, timeout=30).state == "FAILED"
    assert cluster_id not in SlowProbeBackend.live


def test_a_cluster_marked_unhealthy_in_a_pass_is_not_idle_reaped_in_that_pass(
    parts: tuple[Parts, Provisioner],
) -> None:
    p, provisioner = parts
    cluster_id = p.ready_cluster(provisioner, idle_timeout_seconds=1)
    SlowProbeBackend.unanswered.add(cluster_id)
    SlowProbeBackend.busy.add(cluster_id)
    p.lifecycle.run_once()  # miss 1: still READY, and busy now
    SlowProbeBackend.busy.clear()
    time.sleep(1.2)  # past the idle timeout
    p.lifecycle.run_once()  # miss 2: UNHEALTHY, which is not idle (no reaping on stale READY)
    assert p.state(cluster_id) == ClusterState.UNHEALTHY
    assert "idle" not in " ".join(e.reason or "" for e in p.service.events(cluster_id))
