"""Faults during a real run of rayline_train_and_serve (``dag.test()``, real manager and Ray).

- The training cluster's head is killed while the training job runs: the train
  task fails, its retry runs on a *new* cluster, the run succeeds, and the dead
  cluster is cleaned up (no process, no temp dir).
- The Cluster Manager is stopped and started again in the middle of the run: the
  run finishes, and no cluster is lost or duplicated.

The DAG runs in the test's main thread; the fault is injected from a background
thread that watches the run's progress. Each run must still end like a good one
(`checks.assert_served_run`: model registered, served, every output recorded).
After each test only the serving cluster is live; the test deletes it and checks
nothing is left.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from rayline.clusters.ray_auth import auth_headers
from rayline.config import get_settings
from rayline.metadata.enums import ClusterState
from tests.integration.clusters.leaks import assert_no_ray_left, head_pgid
from tests.integration.manager import ManagerProcess, cleanup_clusters
from tests.integration.orchestration.checks import assert_served_run

pytestmark = pytest.mark.integration

# Long enough for the fault to land while the job runs; the spec stays a small model.
_SLOW_TRAINING: dict[str, Any] = {
    "spec_version": 1,
    "name": "iris-faults",
    "dataset": "sklearn:iris",
    "target": "target",
    "task": "classification",
    "framework": "sklearn",
    "hyperparameters": {"n_estimators": 50},
    "workers": 1,
    "cpus_per_worker": 1,
    "seed": 3,
}


class Injector:
    """Run ``fault`` in a background thread once ``ready()`` is true; keep its error."""

    def __init__(self, ready: Callable[[], Any], fault: Callable[[Any], None]) -> None:
        self._ready = ready
        self._fault = fault
        self._stop = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + 900
            while not self._stop.is_set() and time.monotonic() < deadline:
                found = self._ready()
                if found:
                    self._fault(found)
                    self.done.set()
                    return
                time.sleep(0.5)
        except BaseException as err:  # reported by the test
            self.error = err

    def __enter__(self) -> Injector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def serve_on_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ray Serve on the serving cluster: no container outlives the test."""
    monkeypatch.setenv("RAYLINE_SERVING_MODE", "ray")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _training_cluster_running_a_job(manager: ManagerProcess) -> Any:
    """The READY training cluster whose Ray job is RUNNING, if there is one."""
    client = manager.client()
    for cluster in client.list_clusters(purpose="training", state="READY").data:
        if not cluster.job_api_url:
            continue
        try:
            token = client.cluster_credentials(cluster.id).ray_auth_token
            jobs = JobSubmissionClient(cluster.job_api_url, headers=auth_headers(token)).list_jobs()
        except Exception:  # the job API may be coming up: look again later
            continue
        if any(job.status == JobStatus.RUNNING for job in jobs):
            return cluster
    return None


def test_a_killed_training_head_is_replaced_and_the_run_succeeds(
    manager: ManagerProcess, serve_on_ray: None
) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag
    from rayline.orchestration.embedded import run_dag

    killed: list[str] = []

    def kill_head(cluster: Any) -> None:
        os.killpg(head_pgid(cluster.id), signal.SIGKILL)
        killed.append(cluster.id)

    with Injector(lambda: _training_cluster_running_a_job(manager), kill_head) as injector:
        run = run_dag(dag, run_conf={"training": _SLOW_TRAINING})
    assert injector.error is None, injector.error
    assert killed, "the training job never ran long enough to be killed"

    assert_served_run(manager, run, _SLOW_TRAINING["name"])
    clusters = manager.client().list_clusters().data
    training = [c for c in clusters if c.purpose == "training"]
    assert len(training) >= 2, "the retry did not get a new cluster"
    assert all(c.state.is_terminal() for c in training)
    dead = next(c for c in training if c.id == killed[0])
    assert dead.state in (ClusterState.FAILED, ClusterState.TERMINATED)
    assert_no_ray_left(*(c.id for c in training))
    live = [c for c in clusters if not c.state.is_terminal()]
    assert [c.purpose for c in live] == ["serving"]
    cleanup_clusters(manager)
    assert_no_ray_left(*(c.id for c in clusters))


def test_a_manager_restart_mid_run_loses_and_duplicates_nothing(
    manager: ManagerProcess, serve_on_ray: None
) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag
    from rayline.orchestration.embedded import run_dag

    def restart(_: Any) -> None:
        manager.kill(signal.SIGTERM)
        time.sleep(2)
        manager.start()

    with Injector(lambda: _training_cluster_running_a_job(manager), restart) as injector:
        run = run_dag(dag, run_conf={"training": _SLOW_TRAINING})
    assert injector.error is None, injector.error
    assert injector.done.is_set(), "the manager was never restarted"

    assert_served_run(manager, run, _SLOW_TRAINING["name"])
    clusters = manager.client().list_clusters().data
    by_purpose = sorted(c.purpose for c in clusters)
    assert by_purpose == ["serving", "training"], by_purpose  # one each: none duplicated
    training = next(c for c in clusters if c.purpose == "training")
    serving = next(c for c in clusters if c.purpose == "serving")
    assert training.state == ClusterState.TERMINATED  # re-adopted, then deleted by teardown
    assert serving.state == ClusterState.READY
    assert_no_ray_left(training.id)
    cleanup_clusters(manager)
    assert_no_ray_left(serving.id)
