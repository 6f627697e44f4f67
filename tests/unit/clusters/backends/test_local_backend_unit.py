"""LocalBackend behaviour that needs no Ray: validation, teardown of strays, dead probes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayline.clusters.backends.base import ClusterHandle, ClusterRequest, NodeResources
from rayline.clusters.backends.errors import (
    BackendError,
    PortRangeExhaustedError,
    ProvisionError,
    UnsupportedRequestError,
)
from rayline.clusters.backends.local import LocalBackend, LocalHandleData, LocalNode
from rayline.clusters.backends.ports import PortBlock
from rayline.clusters.backends.processes import ProcessRecord, is_running, record_of
from rayline.clusters.backends.ray_nodes import TEMP_DIR_ENV, plan_ports, ports_needed
from rayline.clusters.ray_auth import write_new_token
from rayline.config import Settings


@pytest.fixture
def temp_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="rlu", dir="/tmp"))
    yield base
    for leftover in base.iterdir():
        raise AssertionError(f"test left {leftover} behind")
    base.rmdir()


@pytest.fixture
def backend(tmp_path: Path, temp_base: Path) -> LocalBackend:
    return LocalBackend(
        Settings(
            home=tmp_path,
            ray_temp_base=temp_base,
            local_port_range_start=31000,
            local_port_range_end=31999,
            local_stop_grace_seconds=2,
        )
    )


def fake_handle(backend: LocalBackend, cluster_id: str, process: ProcessRecord) -> ClusterHandle:
    """A handle as provision would write it, around an arbitrary 'head' process."""
    plan = plan_ports(PortBlock(31000, ports_needed(1, 10)), 1, 10)
    temp_dir = backend.temp_dir_for(cluster_id)
    log_file = backend.settings.cluster_state_dir / cluster_id / "head.log"
    head = LocalNode(
        name="head", role="head", process=process, log_file=str(log_file), ports=plan.nodes[0]
    )
    data = LocalHandleData(
        temp_dir=str(temp_dir),
        log_dir=str(log_file.parent),
        ip="127.0.0.1",
        ports=plan,
        nodes=[head],
    )
    return backend._handle(cluster_id, data)


def finished_process() -> ProcessRecord:
    child = subprocess.Popen(["true"])
    child.wait()
    return ProcessRecord(pid=child.pid, pgid=child.pid, start_ticks=1)


def test_temp_dirs_are_short_distinct_and_stable(backend: LocalBackend, temp_base: Path) -> None:
    a, b = backend.temp_dir_for("cluster-a"), backend.temp_dir_for("cluster-b")
    assert a != b and a.parent == b.parent == temp_base
    assert backend.temp_dir_for("cluster-a") == a
    assert len(str(a)) < 40


def test_the_default_temp_base_is_per_user_and_unguessable(tmp_path: Path) -> None:
    first = LocalBackend(Settings(home=tmp_path / "a")).temp_dir_for("c").parent
    again = LocalBackend(Settings(home=tmp_path / "a")).temp_dir_for("c").parent
    other = LocalBackend(Settings(home=tmp_path / "b")).temp_dir_for("c").parent

    assert first == again != other
    assert first.parent == Path(tempfile.gettempdir()) and first.name.startswith("rl-")
    assert len(first.name) == len("rl-") + 8


def test_a_temp_base_others_may_write_is_refused_before_anything_starts(
    tmp_path: Path, temp_base: Path
) -> None:
    temp_base.chmod(0o777)
    backend = LocalBackend(Settings(home=tmp_path, ray_temp_base=temp_base))
    request = ClusterRequest(cluster_id="planted", name="planted", purpose="training")

    with pytest.raises(ProvisionError, match=r"writable by group or others \(mode 777\)"):
        backend.provision(request)
    assert not backend.temp_dir_for("planted").exists()


def test_long_temp_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="RAYLINE_RAY_TEMP_BASE"):
        LocalBackend(Settings(home=tmp_path, ray_temp_base=tmp_path / ("x" * 60)))


def test_capacity_reports_this_host(backend: LocalBackend) -> None:
    capacity = backend.capacity()
    assert capacity.max_cpus is not None and capacity.max_cpus >= 1
    assert capacity.max_memory_mb is not None and capacity.max_memory_mb > 0
    assert capacity.max_gpus is not None and capacity.max_gpus >= 0


def test_fractional_cpus_are_refused_before_anything_starts(backend: LocalBackend) -> None:
    request = ClusterRequest(
        cluster_id="frac",
        name="frac",
        purpose="training",
        worker=NodeResources(cpus=1.5),
        worker_count=1,
    )
    with pytest.raises(UnsupportedRequestError, match="whole"):
        backend.provision(request)
    assert not backend.temp_dir_for("frac").exists()
    assert not (backend.settings.cluster_state_dir / "ports.json").exists()


def test_probe_of_a_dead_head_is_dead_with_its_log(backend: LocalBackend) -> None:
    handle = fake_handle(backend, "dead", finished_process())
    log_file = Path(handle.handle["nodes"][0]["log_file"])
    log_file.parent.mkdir(parents=True)
    log_file.write_text("starting\n\nValueError: port 31000 already in use\n")
    report = backend.probe(handle, expected_nodes=1)
    assert report.dead and not report.ready
    assert "head `ray start`" in report.reason
    assert "ValueError: port 31000 already in use" in report.reason


def test_adopt_needs_the_same_process_started_for_this_cluster(backend: LocalBackend) -> None:
    assert not backend.adopt(fake_handle(backend, "gone", finished_process()))
    me = record_of(os.getpid())
    assert me is not None
    # Alive, but its command line does not name the cluster's temp dir: not ours.
    assert not backend.adopt(fake_handle(backend, "stranger", me))


def test_terminate_kills_marked_strays_frees_ports_and_is_idempotent(
    backend: LocalBackend,
) -> None:
    handle = fake_handle(backend, "strays", finished_process())
    temp_dir = backend.temp_dir_for("strays")
    (temp_dir / "session_x").mkdir(parents=True)
    backend._ports.allocate("strays", 10, guard=temp_dir)
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        env={**os.environ, TEMP_DIR_ENV: str(temp_dir)},
        start_new_session=True,
    )
    try:
        record = record_of(stray.pid)
        assert record is not None
        token_path = backend.auth_token_path("strays")
        write_new_token(token_path)
        assert backend.auth_token(handle) == token_path.read_text()
        backend.terminate(handle)
        assert not is_running(record)
        assert not temp_dir.exists()
        assert not token_path.exists() and backend.auth_token(handle) is None
        assert "strays" not in backend._ports.leases()
        backend.terminate(handle)  # again: nothing left to do, no error
    finally:
        stray.kill()
        stray.wait(timeout=10)


def test_no_free_ports_fails_cleanly(tmp_path: Path, temp_base: Path) -> None:
    tiny = LocalBackend(
        Settings(
            home=tmp_path,
            ray_temp_base=temp_base,
            local_port_range_start=31000,
            local_port_range_end=31050,
        )
    )
    request = ClusterRequest(cluster_id="big", name="big", purpose="training", worker_count=3)
    with pytest.raises(PortRangeExhaustedError, match="RAYLINE_LOCAL_PORT_RANGE"):
        tiny.provision(request)
    assert not tiny.temp_dir_for("big").exists()
