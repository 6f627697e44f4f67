"""The Cluster Manager's Prometheus file_sd writer, alone and inside an in-process manager."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayline.clusters.api.app import create_app
from rayline.clusters.backends.base import ClusterHandle, ClusterRequest
from rayline.clusters.prometheus_sd import PrometheusTargetWriter
from rayline.config import Settings
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.models import Cluster, ServiceEndpoint
from rayline.metadata.registry import ModelRegistry
from tests.unit.clusters.api.conftest import fake_backend, settings
from tests.unit.clusters.api.fakes import TOKEN, FakeBackend, runtime, spec, wait_state

__all__ = ["fake_backend", "settings"]

TARGETS = {"head": "127.0.0.1:24102", "dashboard": "127.0.0.1:24103"}


def cluster(cluster_id: str, state: ClusterState = ClusterState.READY) -> Cluster:
    return Cluster(
        id=cluster_id,
        name=f"name-{cluster_id}",
        purpose=ClusterPurpose.TRAINING,
        state=state,
        backend_handle={"metrics_targets": TARGETS},
    )


def endpoint() -> ServiceEndpoint:
    return ServiceEndpoint(
        url="http://127.0.0.1:9100/",
        model_name="iris",
        model_version=3,
        cluster_id="c1",
        deployment_id="d1",
    )


def read(directory: Path, name: str) -> Any:
    return json.loads((directory / name).read_text())


def test_writes_manager_clusters_and_serving_with_labels(tmp_path: Path) -> None:
    writer = PrometheusTargetWriter(tmp_path / "sd", "127.0.0.1:8765")
    assert writer.write([cluster("c1"), cluster("c2", ClusterState.TERMINATED)], [endpoint()])
    sd = tmp_path / "sd"
    assert sorted(p.name for p in sd.iterdir()) == [
        "cluster-c1.json",
        "manager.json",
        "serving.json",
    ]
    assert read(sd, "manager.json") == [
        {"targets": ["127.0.0.1:8765"], "labels": {"component": "cluster-manager"}}
    ]
    nodes = read(sd, "cluster-c1.json")
    assert [g["targets"] for g in nodes] == [["127.0.0.1:24103"], ["127.0.0.1:24102"]]
    assert nodes[1]["labels"] == {
        "cluster_id": "c1",
        "cluster_name": "name-c1",
        "purpose": "training",
        "node": "head",
    }
    (serving,) = read(sd, "serving.json")
    assert serving["targets"] == ["127.0.0.1:9100"]
    assert serving["labels"] == {
        "__scheme__": "http",
        "__metrics_path__": "/metrics",
        "model": "iris",
        "version": "3",
        "cluster_id": "c1",
        "deployment_id": "d1",
    }


def test_ended_cluster_file_is_removed_and_no_temp_files_remain(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    writer = PrometheusTargetWriter(sd, "127.0.0.1:8765")
    writer.write([cluster("c1"), cluster("c2")], [])
    writer.write([cluster("c2")], [])
    assert sorted(p.name for p in sd.iterdir()) == [
        "cluster-c2.json",
        "manager.json",
        "serving.json",
    ]
    assert read(sd, "serving.json") == []


def test_unwritable_directory_warns_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory's parent should be")
    writer = PrometheusTargetWriter(blocker / "targets", "127.0.0.1:8765")
    with caplog.at_level(logging.WARNING, logger="rayline.clusters.prometheus_sd"):
        assert not writer.write([cluster("c1")], [])
        assert not writer.write([cluster("c1")], [])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot write" in warnings[0].getMessage()
    assert "RAYLINE_PROMETHEUS_SD_DIR" in warnings[0].getMessage()
    blocker.unlink()
    assert writer.write([cluster("c1")], [])
    assert (blocker / "targets" / "cluster-c1.json").is_file()


def _provision_with_targets(self: FakeBackend, request: ClusterRequest) -> ClusterHandle:
    handle = _original_provision(self, request)
    return handle.model_copy(update={"metrics_targets": dict(TARGETS)})


_original_provision = FakeBackend.provision


def test_manager_keeps_targets_in_step_with_clusters_and_services(
    settings: Settings, fake_backend: type[FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeBackend, "provision", _provision_with_targets)
    sd = settings.prometheus_sd_dir
    with TestClient(
        create_app(settings, run_lifecycle=False), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        assert read(sd, "manager.json")[0]["targets"] == [f"127.0.0.1:{settings.api_port}"]
        cluster_id = client.post("/v1/clusters", json=spec(purpose="serving")).json()["id"]
        wait_state(client, cluster_id)
        groups = read(sd, f"cluster-{cluster_id}.json")
        assert {g["labels"]["purpose"] for g in groups} == {"serving"}
        ModelRegistry().register_version(
            runtime(client).engine, name="iris", artifact_uri="file:///tmp/iris", sha256="0" * 64
        )
        body = {"model_name": "iris", "model_version": 1, "url": "http://127.0.0.1:9100"}
        service = client.post("/v1/services", json={**body, "cluster_id": cluster_id}).json()
        assert read(sd, "serving.json")[0]["labels"]["model"] == "iris"
        client.delete(f"/v1/services/{service['id']}")
        assert read(sd, "serving.json") == []
        client.delete(f"/v1/clusters/{cluster_id}")
        wait_state(client, cluster_id, "TERMINATED")
        assert not (sd / f"cluster-{cluster_id}.json").exists()


def test_targets_exist_while_provisioning_before_ready_is_visible(
    settings: Settings, fake_backend: type[FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promise: a client that sees READY finds the cluster's targets already written."""
    monkeypatch.setattr(FakeBackend, "provision", _provision_with_targets)
    gate = threading.Event()
    probe = FakeBackend.probe

    def probe_after_gate(self: FakeBackend, handle: ClusterHandle, expected_nodes: int) -> Any:
        report = probe(self, handle, expected_nodes)
        return report if gate.is_set() else report.model_copy(update={"job_api_ok": False})

    monkeypatch.setattr(FakeBackend, "probe", probe_after_gate)
    sd = settings.prometheus_sd_dir
    with TestClient(
        create_app(settings, run_lifecycle=False), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
        target = sd / f"cluster-{cluster_id}.json"
        deadline = time.monotonic() + 30  # the provisioner thread stores the handle
        while not target.exists():
            assert time.monotonic() < deadline, "no targets while PROVISIONING"
            time.sleep(0.02)
        assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "PROVISIONING"
        assert read(sd, target.name)
        gate.set()
        assert wait_state(client, cluster_id)["state"] == "READY"
        client.delete(f"/v1/clusters/{cluster_id}")
        assert not (sd / f"cluster-{cluster_id}.json").exists()


def test_manager_works_when_the_target_dir_is_unwritable(
    settings: Settings,
    fake_backend: type[FakeBackend],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "blocker").write_text("")
    settings = settings.model_copy(update={"prometheus_sd_dir": tmp_path / "blocker" / "sd"})
    with (
        caplog.at_level(logging.WARNING, logger="rayline.clusters.prometheus_sd"),
        TestClient(
            create_app(settings, run_lifecycle=False),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client,
    ):
        cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
        assert wait_state(client, cluster_id)["state"] == "READY"
        client.delete(f"/v1/clusters/{cluster_id}")
        assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "rayline.clusters.prometheus_sd" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings
