"""A real Prometheus scraping, through our file_sd files, a real manager, clusters and model.

One module-scoped stack: Prometheus from ``deploy/monitoring.sh`` (2 s scrapes, its
own port and state dir), a Cluster Manager writing the target files, a training and
a serving cluster (head only), an iris model served by Ray Serve on the serving
cluster (mode ``ray``: no image build) under a background load with some bad
requests, and one recorded workflow run. Everything is stopped at the end, also
when a test failed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, Engine

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.config import Settings
from rayline.jobs.requests import DeployRequest
from rayline.jobs.serving import run_deploy
from rayline.metadata import create_engine_for
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.workflows import finish_run, finish_step, start_run, start_step
from rayline.storage import open_store
from tests.integration.manager import ManagerProcess, cleanup_clusters, free_port
from tests.integration.serving.conftest import module_bucket, module_pg_url
from tests.unit.serving.model_factory import iris_rows, publish_iris

__all__ = ["MonitoringEnv", "module_bucket", "module_pg_url"]

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "deploy" / "monitoring.sh"
PORT_RANGE_START = "31500"  # away from the other suites' clusters
SCRAPE_INTERVAL = "2s"
READY_TIMEOUT = 300


@dataclass
class Load:
    """Prediction requests in a background thread, plus a few bad ones, until stopped."""

    url: str
    model: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def run(self) -> None:
        rows = {"instances": iris_rows(4).tolist()}
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                # One slow or refused request on a loaded host must not end the load
                # (the rate queries would then run dry a minute later).
                with contextlib.suppress(httpx.HTTPError):
                    client.post(f"{self.url}/v1/models/{self.model}:predict", json=rows)
                    if self.sent % 10 == 0:  # a 4xx: errors by code
                        client.post(f"{self.url}/v1/models/{self.model}:predict", content=b"{")
                self.sent += 1
                self.stop.wait(0.05)


@dataclass
class MonitoringEnv:
    """What the tests of the module share."""

    prometheus_url: str
    state_dir: Path
    sd_dir: Path
    manager: ManagerProcess
    client: ClusterManagerClient
    training: ClusterPublic
    serving: ClusterPublic
    model: str
    deployment: dict[str, Any]
    script_env: dict[str, str] = field(repr=False)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Result of an instant query (fails the test on a query error)."""
        body = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        """Prometheus's active targets."""
        body = httpx.get(f"{self.prometheus_url}/api/v1/targets", params={"state": "active"})
        targets: list[dict[str, Any]] = body.json()["data"]["activeTargets"]
        return targets


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll until ``predicate`` returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(1)


def _monitoring(command: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(SCRIPT), command], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"monitoring.sh {command}: {result.stderr}"


def _run_tasks(job_api_url: str, token: str | None) -> None:
    """A small Ray job on a cluster, so it has task series as a training job leaves."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    from rayline.clusters.ray_auth import auth_headers

    client = JobSubmissionClient(job_api_url, headers=auth_headers(token))
    code = (
        "import ray; ray.init(); f = ray.remote(lambda i: i); "
        "print(sum(ray.get([f.remote(i) for i in range(8)])))"
    )
    job = client.submit_job(entrypoint=f"python -c {shlex.quote(code)}")
    status = wait_until(
        lambda: (s := client.get_job_status(job)).is_terminal() and s,
        timeout=180,
        what=f"Ray job {job} ending",
    )
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(job)


def _ready_cluster(
    client: ClusterManagerClient, name: str, purpose: Purpose, *, cpus: int
) -> ClusterPublic:
    spec = ClusterCreate(name=name, purpose=purpose, head=ResourceSpec(cpus=cpus), ttl_seconds=3600)
    return client.wait_until_ready(client.create_cluster(spec).id, timeout=READY_TIMEOUT)


def _record_workflow(engine: Engine) -> None:
    """What the orchestration layer records for a run: a trained model, a failed deploy."""
    run = start_run(engine, dag_id="rayline_train_and_serve", external_run_id="monitoring-test")
    for name in ("create_training_cluster", "train", "delete_training_cluster"):
        step = start_step(engine, run.id, name=name)
        finish_step(engine, step.id, status=WorkflowStatus.SUCCESS)
    step = start_step(engine, run.id, name="deploy")
    finish_step(engine, step.id, status=WorkflowStatus.FAILED, error="port in use")
    start_step(engine, run.id, name="deploy", try_number=2)
    finish_run(engine, run.id, status=WorkflowStatus.FAILED, error="deploy failed")


@pytest.fixture(scope="module")
def monitoring_env(
    module_pg_url: URL, module_bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitoringEnv]:
    """The stack of this module's docstring, torn down whatever happens."""
    home = tmp_path_factory.mktemp("mon-home")
    sd_dir = home / "targets"
    state_dir = home / "prometheus"
    token = secrets.token_urlsafe(32)
    token_file = home / "manager-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    database_url = module_pg_url.render_as_string(hide_password=False)
    artifact_uri = f"s3://{module_bucket}/artifacts"
    api_port = free_port()
    prometheus_port = free_port()
    script_env = {
        **os.environ,
        "RAYLINE_HOME": str(home),
        "RAYLINE_MONITORING_DIR": str(state_dir),
        "RAYLINE_PROMETHEUS_PORT": str(prometheus_port),
        "RAYLINE_PROMETHEUS_SD_DIR": str(sd_dir),
        "RAYLINE_PROMETHEUS_TOKEN_FILE": str(token_file),
        "RAYLINE_PROMETHEUS_SCRAPE_INTERVAL": SCRAPE_INTERVAL,
    }
    manager_env = {
        **os.environ,
        "RAYLINE_HOME": str(home),
        "RAYLINE_DATABASE_URL": database_url,
        "RAYLINE_ARTIFACT_URI": artifact_uri,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(api_port),
        "RAYLINE_PROVISION_TIMEOUT_SECONDS": "240",
        "RAYLINE_LOCAL_PORT_RANGE_START": PORT_RANGE_START,
        "RAYLINE_PROMETHEUS_SD_DIR": str(sd_dir),
        "RAYLINE_REAPER_INTERVAL_SECONDS": "2",
    }
    settings = Settings(
        home=home,
        database_url=database_url,
        artifact_uri=artifact_uri,
        cluster_manager_url=f"http://127.0.0.1:{api_port}",
        api_token=token,
        local_port_range_start=int(PORT_RANGE_START),
        serving_mode="ray",
        serving_start_timeout_seconds=240,
    )
    engine = create_engine_for(module_pg_url)
    manager = ManagerProcess(env=manager_env, port=api_port, log=home / "manager.log", token=token)
    load: Load | None = None
    thread: threading.Thread | None = None
    _monitoring("up", script_env)
    try:
        manager.start()
        client = manager.client()
        training = _ready_cluster(client, "mon-train", Purpose.TRAINING, cpus=1)
        _run_tasks(training.job_api_url, client.cluster_credentials(training.id).ray_auth_token)
        # A manager restart: it re-adopts the training cluster (a reaper action) and
        # rewrites the targets from the database; the serving cluster comes from the new
        # process, so its provisioning time is in the new process's metrics.
        manager.kill(signal.SIGTERM)
        manager.start()
        client = manager.client()
        serving = _ready_cluster(client, "mon-serve", Purpose.SERVING, cpus=2)

        model = f"mon{secrets.token_hex(3)}"
        store = open_store(artifact_uri, settings)
        publish_iris(store, engine, tmp_path_factory.mktemp("mon-model"), name=model)
        outcome = run_deploy(
            client,
            DeployRequest(model=model, mode="ray", cluster_id=serving.id),
            settings=settings,
            on_output=lambda chunk: print(chunk, end=""),
            timeout=600,
        )
        assert outcome.result is not None, outcome.job.describe_failure()
        load = Load(url=str(outcome.result.url), model=model)
        thread = threading.Thread(target=load.run, name="load", daemon=True)
        thread.start()
        _record_workflow(engine)

        yield MonitoringEnv(
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
            state_dir=state_dir,
            sd_dir=sd_dir,
            manager=manager,
            client=client,
            training=training,
            serving=serving,
            model=model,
            deployment=outcome.result.model_dump(mode="json"),
            script_env=script_env,
        )
    finally:
        if load is not None and thread is not None:
            load.stop.set()
            thread.join(timeout=30)
        try:
            if manager.process is not None and manager.process.poll() is None:
                cleanup_clusters(manager)  # also ends the Serve app with its cluster
        finally:
            for c in manager.clients:
                c.close()
            manager.kill(signal.SIGTERM)
            engine.dispose()
            _monitoring("down", script_env)
