"""The backend value types: JSON round trips, readiness, activity, spec conversion."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rayline.clusters.backends.base import (
    Activity,
    ClusterHandle,
    ClusterRequest,
    HealthReport,
    NodeResources,
)
from rayline.clusters.backends.errors import InvalidHandleError
from rayline.clusters.backends.local import LocalBackend
from rayline.config import Settings


def handle(**changes: Any) -> ClusterHandle:
    values: dict[str, Any] = {
        "backend": "local",
        "cluster_id": "c1",
        "head_address": "127.0.0.1:30000",
        "dashboard_url": "http://127.0.0.1:30001",
        "job_api_url": "http://127.0.0.1:30001",
        "metrics_targets": {"head": "127.0.0.1:30008"},
        "handle": {"pids": [1, 2], "temp_dir": "/tmp/rl/x", "nested": {"a": [1.5, None]}},
    }
    return ClusterHandle(**(values | changes))


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(Settings(home=tmp_path, ray_temp_base=Path("/tmp/rl-unit")))


def test_handle_survives_a_trip_through_json_text(backend: LocalBackend) -> None:
    original = handle()
    stored = json.loads(json.dumps(original.to_json()))
    assert backend.load_handle(stored) == original


def test_handle_of_another_backend_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(InvalidHandleError, match="RAYLINE_CLUSTER_BACKEND=docker"):
        backend.load_handle(handle(backend="docker").to_json())


def test_unreadable_handle_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(InvalidHandleError, match="unreadable"):
        backend.load_handle({"backend": "local"})


def test_ready_needs_gcs_job_api_and_every_node() -> None:
    ready = HealthReport(expected_nodes=3, gcs_ok=True, alive_nodes=3, job_api_ok=True)
    assert ready.ready
    assert "3/3 nodes alive" in ready.summary
    assert not ready.model_copy(update={"alive_nodes": 2}).ready
    assert not ready.model_copy(update={"job_api_ok": False}).ready
    assert not ready.model_copy(update={"gcs_ok": False}).ready
    assert not ready.model_copy(update={"dead": True, "reason": "head gone"}).ready


def test_activity_counts_unknown_as_busy() -> None:
    assert not Activity().busy
    assert Activity(running_jobs=1).busy
    assert Activity(pending_jobs=1).busy
    assert Activity(serve_apps=1).busy
    assert Activity(error="job API not answering").busy


@dataclass
class FakeResources:
    cpus: float = 2
    memory_mb: int | None = 512
    gpus: int = 0
    custom: dict[str, float] = field(default_factory=lambda: {"x": 1.0})


@dataclass
class FakeSpec:
    name: str = "train"
    purpose: str = "training"
    head: FakeResources = field(default_factory=FakeResources)
    worker: FakeResources = field(default_factory=lambda: FakeResources(memory_mb=None))
    worker_count: int = 2
    runtime_env: dict[str, Any] = field(default_factory=lambda: {"env_vars": {"A": "1"}})
    labels: dict[str, str] = field(default_factory=lambda: {"team": "ml"})


def test_request_from_spec_converts_memory_to_bytes() -> None:
    request = ClusterRequest.from_spec(cluster_id="c9", spec=FakeSpec())
    assert request.cluster_id == "c9"
    assert request.node_count == 3
    assert request.head == NodeResources(cpus=2, memory_bytes=512 * 2**20, custom={"x": 1.0})
    assert request.worker.memory_bytes is None
    assert request.runtime_env == {"env_vars": {"A": "1"}}
    assert request.labels == {"team": "ml"}
    assert ClusterRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize("cluster_id", ["", "../etc", "a/b", ".hidden"])
def test_cluster_ids_that_could_escape_a_directory_are_refused(cluster_id: str) -> None:
    with pytest.raises(ValueError, match="cluster_id"):
        ClusterRequest(cluster_id=cluster_id, name="x", purpose="training")
