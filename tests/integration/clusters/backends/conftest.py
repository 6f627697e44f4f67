"""Real local Ray clusters for backend tests; needs only this machine, no other service.

Every cluster a test starts is terminated in teardown, pass or fail, and the
session ends by checking that no process of ours (marked with a temp dir under
this session's temp base) is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rayline.clusters.backends.base import ClusterHandle, ClusterRequest, HealthReport
from rayline.clusters.backends.local import LocalBackend
from rayline.clusters.backends.ray_nodes import TEMP_DIR_ENV
from rayline.config import Settings

READY_TIMEOUT = 600  # a busy 2-core host starts nodes slowly, one at a time
_PROC = Path("/proc")


@pytest.fixture(scope="session")
def ray_temp_base() -> Iterator[Path]:
    """A short temp base of this session's own; checked empty and process-free at the end."""
    base = Path(tempfile.mkdtemp(prefix="rlt", dir="/tmp"))
    yield base
    left = processes_under(base)
    for pid in left:  # marked with this session's unique base: certainly ours
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    dirs = list(base.iterdir())
    shutil.rmtree(base, ignore_errors=True)
    assert not left, f"Ray processes outlived the tests: {left}"
    assert not dirs, f"Ray temp dirs outlived the tests: {dirs}"


@pytest.fixture(scope="session")
def settings(ray_temp_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with this session's temp base, state dir and a port range of its own."""
    return Settings(
        home=tmp_path_factory.mktemp("home"),
        ray_temp_base=ray_temp_base,
        local_port_range_start=29000,
        local_port_range_end=32700,
    )


@pytest.fixture
def backend(settings: Settings) -> LocalBackend:
    return LocalBackend(settings)


@pytest.fixture
def start_cluster(backend: LocalBackend) -> Iterator[Callable[..., ClusterHandle]]:
    """Provision clusters; every one is terminated at teardown whatever happened."""
    handles: list[ClusterHandle] = []

    def start(cluster_id: str, **request: object) -> ClusterHandle:
        spec = ClusterRequest.model_validate(
            {"cluster_id": cluster_id, "name": cluster_id, "purpose": "training", **request}
        )
        handle = backend.provision(spec)
        handles.append(handle)
        return handle

    yield start
    errors = []
    for handle in handles:
        try:
            LocalBackend(backend.settings).terminate(handle)
        except Exception as exc:  # report every failed teardown, not just the first
            errors.append(f"{handle.cluster_id}: {exc!r}")
    assert not errors, errors


@pytest.fixture
def wait_ready(backend: LocalBackend) -> Callable[[ClusterHandle, int], tuple[HealthReport, float]]:
    """Probe until ready; returns the report and the seconds it took."""
    return lambda handle, expected: _wait_ready(backend, handle, expected)


def _wait_ready(
    backend: LocalBackend, handle: ClusterHandle, expected: int
) -> tuple[HealthReport, float]:
    """Probe until ready; returns the report and seconds since this call."""
    started = time.monotonic()
    while True:
        report = backend.probe(handle, expected_nodes=expected)
        if report.ready:
            return report, time.monotonic() - started
        assert not report.dead, report.reason
        if time.monotonic() - started > READY_TIMEOUT:
            pytest.fail(f"cluster {handle.cluster_id} not ready: {report.summary}")
        time.sleep(0.5)


@pytest.fixture
def leftovers() -> Callable[[Path], list[int]]:
    """Pids of live processes marked with (or naming) a temp dir."""
    return processes_under


def processes_under(path: Path) -> list[int]:
    """Live processes naming ``path`` (or anything below) in their command line or marker."""
    prefix = f"{TEMP_DIR_ENV}={path}".encode()
    needle = str(path).encode()
    pids = []
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            stat = (_PROC / name / "stat").read_text()
            cmdline = (_PROC / name / "cmdline").read_bytes()
            environ = (_PROC / name / "environ").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].startswith("Z"):
            continue
        if needle in cmdline or any(e.startswith(prefix) for e in environ.split(b"\0")):
            pids.append(int(name))
    return pids
