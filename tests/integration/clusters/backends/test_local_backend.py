"""The local backend against real Ray: start, run jobs, watch, adopt, kill, clean up."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from rayline.clusters.backends.base import ClusterHandle, HealthReport
from rayline.clusters.backends.local import LocalBackend, LocalHandleData
from rayline.clusters.ray_auth import auth_headers
from tests.integration.clusters.backends.conftest import _wait_ready

pytestmark = pytest.mark.integration

RESOURCES_JOB = 'python -c "import ray; ray.init(); print(ray.cluster_resources())"'
JOB_TIMEOUT = 180

StartCluster = Callable[..., ClusterHandle]
WaitReady = Callable[[ClusterHandle, int], tuple[HealthReport, float]]
Leftovers = Callable[[Path], list[int]]


def wait_job(client: JobSubmissionClient, job_id: str, *statuses: JobStatus) -> JobStatus:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        status = client.get_job_status(job_id)
        if status in statuses:
            return status
        assert not status.is_terminal(), client.get_job_logs(job_id)
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.5)


def wait_dead(backend: LocalBackend, handle: ClusterHandle) -> HealthReport:
    """Probe until the backend notices the processes are gone (signals land asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        report = backend.probe(handle, expected_nodes=1)
        if report.dead or time.monotonic() > deadline:
            assert report.dead, report.summary
            return report
        time.sleep(0.2)


def assert_gone(handle: ClusterHandle, leftovers: Leftovers) -> None:
    temp_dir = Path(LocalHandleData.model_validate(handle.handle).temp_dir)
    assert leftovers(temp_dir) == []
    assert not temp_dir.exists()


def stored(handle: ClusterHandle, backend: LocalBackend) -> ClusterHandle:
    """The handle as another process reads it back from the database."""
    return LocalBackend(backend.settings).load_handle(json.loads(json.dumps(handle.to_json())))


def test_head_only_cluster_runs_jobs_reports_activity_and_cleans_up(
    backend: LocalBackend,
    start_cluster: StartCluster,
    wait_ready: WaitReady,
    leftovers: Leftovers,
    tmp_path: Path,
) -> None:
    handle = start_cluster("solo", head={"cpus": 1})
    assert handle.head_address.startswith("127.0.0.1:")
    report, seconds = wait_ready(handle, 1)
    print(f"\nhead-only: provision -> ready in {seconds:.1f} s")
    assert [n["role"] for n in report.nodes] == ["head"]
    assert report.nodes[0]["resources"]["CPU"] == 1.0

    client = JobSubmissionClient(
        handle.job_api_url, headers=auth_headers(backend.auth_token(handle))
    )
    job = client.submit_job(entrypoint=RESOURCES_JOB)
    assert wait_job(client, job, JobStatus.SUCCEEDED) == JobStatus.SUCCEEDED
    assert "'CPU': 1.0" in client.get_job_logs(job)

    flag = tmp_path / "release"
    wait_for_flag = f"[time.sleep(0.2) for _ in iter(lambda: os.path.exists('{flag}'), True)]"
    blocker = client.submit_job(entrypoint=f'python -c "import os, time; {wait_for_flag}"')
    wait_job(client, blocker, JobStatus.RUNNING)
    activity = backend.activity(handle)
    assert (activity.running_jobs, activity.serve_apps, activity.error) == (1, 0, None)
    assert activity.busy
    flag.touch()
    wait_job(client, blocker, JobStatus.SUCCEEDED)
    assert not backend.activity(handle).busy

    # A manager restarted from the stored handle finds and owns the cluster.
    restarted = LocalBackend(backend.settings)
    reread = stored(handle, backend)
    assert restarted.adopt(reread)
    restarted.terminate(reread)
    assert_gone(handle, leftovers)
    assert not restarted.adopt(reread)
    assert restarted.probe(reread, expected_nodes=1).dead
    restarted.terminate(reread)  # idempotent


def test_head_and_two_workers_share_the_work(
    backend: LocalBackend,
    start_cluster: StartCluster,
    wait_ready: WaitReady,
    leftovers: Leftovers,
) -> None:
    # The head takes no tasks: the 2 logical CPUs are the workers', this host has 2 cores.
    handle = start_cluster("trio", head={"cpus": 0}, worker={"cpus": 1}, worker_count=2)
    report, seconds = wait_ready(handle, 3)
    print(f"\nhead + 2 workers: provision -> ready in {seconds:.1f} s")
    assert sorted(n["role"] for n in report.nodes) == ["head", "worker", "worker"]
    data = LocalHandleData.model_validate(handle.handle)
    ranges = [range(n.ports.min_worker, n.ports.max_worker + 1) for n in data.nodes]
    assert all(set(a).isdisjoint(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
    assert len(set(handle.metrics_targets.values())) == len(handle.metrics_targets) == 5

    client = JobSubmissionClient(
        handle.job_api_url, headers=auth_headers(backend.auth_token(handle))
    )
    job = client.submit_job(
        entrypoint='python -c "import ray; ray.init(); print(ray.cluster_resources()); '
        "f = ray.remote(lambda: ray.get_runtime_context().get_node_id()); "
        "print(len(set(ray.get([f.remote() for _ in range(8)]))), 'nodes used')\""
    )
    assert wait_job(client, job, JobStatus.SUCCEEDED) == JobStatus.SUCCEEDED
    logs = client.get_job_logs(job)
    assert "'CPU': 2.0" in logs

    backend.terminate(handle)
    assert_gone(handle, leftovers)


def test_two_clusters_coexist_and_a_killed_one_is_reported_dead(
    backend: LocalBackend,
    start_cluster: StartCluster,
    wait_ready: WaitReady,
    leftovers: Leftovers,
) -> None:
    victim = start_cluster("victim", head={"cpus": 1})
    survivor = start_cluster("survivor", head={"cpus": 1})
    victim_data = LocalHandleData.model_validate(victim.handle)
    survivor_data = LocalHandleData.model_validate(survivor.handle)
    victim_ports = set(victim_data.ports.head.model_dump().values())
    survivor_ports = set(survivor_data.ports.head.model_dump().values())
    assert victim_ports.isdisjoint(survivor_ports)
    for handle in (victim, survivor):
        _, seconds = wait_ready(handle, 1)
        print(f"\n{handle.cluster_id}: ready {seconds:.1f} s after the previous one")

    # Someone outside Rayline kills the victim's head process group.
    os.killpg(victim_data.head.process.pgid, signal.SIGKILL)
    report = wait_dead(backend, victim)
    assert not report.ready
    assert "head `ray start`" in report.reason and "code -9" in report.reason
    restarted = LocalBackend(backend.settings)
    assert not restarted.adopt(stored(victim, backend))
    assert restarted.adopt(stored(survivor, backend))
    # Ready, from the restarted backend too. (Polled: one probe has a 3 s timeout, which
    # the survivor's dashboard can miss on a loaded host; a dead survivor fails at once.)
    _wait_ready(restarted, stored(survivor, backend), 1)

    backend.terminate(victim)
    assert_gone(victim, leftovers)
    wait_ready(survivor, 1)
    backend.terminate(survivor)
    assert_gone(survivor, leftovers)


def test_a_cluster_whose_handle_was_never_stored_is_released_by_its_id(
    backend: LocalBackend,
    start_cluster: StartCluster,
    wait_ready: WaitReady,
    leftovers: Leftovers,
) -> None:
    # A manager that died right after starting Ray left no handle: another one
    # (a new leader, a restarted manager) knows only the cluster id.
    handle = start_cluster("orphan", head={"cpus": 1})
    wait_ready(handle, 1)
    temp_dir = Path(LocalHandleData.model_validate(handle.handle).temp_dir)
    assert leftovers(temp_dir)

    LocalBackend(backend.settings).release_unrecorded("orphan")

    assert_gone(handle, leftovers)
    assert "orphan" not in backend._ports.leases()
    LocalBackend(backend.settings).release_unrecorded("orphan")  # idempotent
