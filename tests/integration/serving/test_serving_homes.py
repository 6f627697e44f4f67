"""Three deploys of one model leave one serving cluster; an idle one is reaped.

A real Cluster Manager on Postgres starts real Ray clusters; each deploy runs
the deploy job the DAG submits (`run_deploy`, the Deployer on the cluster), and
asks for its serving cluster the way the DAG's serving step does (a serving
request labelled with the model). In ray mode the replicas run on the cluster;
in Docker mode each version is a container, and only the live one remains.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, Engine

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.clusters.serving_homes import MODEL_LABEL
from rayline.config import Settings
from rayline.jobs.requests import DeployRequest
from rayline.jobs.results import DeployResult
from rayline.jobs.serving import run_deploy
from rayline.metadata import DeploymentStatus, create_engine_for
from rayline.serving import records
from rayline.serving.docker_engine import LABEL_PREFIX
from rayline.storage import open_store
from tests.integration.clusters.leaks import assert_no_ray_left
from tests.integration.manager import ManagerProcess, cleanup_clusters, free_port
from tests.integration.serving.conftest import (
    PORT_RANGE_START,
    READY_TIMEOUT,
    TEST_LABEL,
    remove_test_containers_and_images,
)
from tests.unit.serving.model_factory import iris_rows, publish_iris

pytestmark = pytest.mark.integration

IDLE_SECONDS = 30  # the manager's RAYLINE_SERVING_IDLE_SECONDS in this test


def serving_request(name: str, model: str | None = None) -> ClusterCreate:
    """The DAG's serving cluster request (2 logical CPUs: the deploy job and a replica)."""
    return ClusterCreate(
        name=name,
        purpose=Purpose.SERVING,
        head=ResourceSpec(cpus=2),
        ttl_seconds=3600,
        labels={MODEL_LABEL: model} if model else {},
    )


@pytest.fixture
def manager(module_pg_url: URL, module_bucket: str, tmp_path: Path) -> Iterator[ManagerProcess]:
    """A manager that reaps serving clusters idle for `IDLE_SECONDS`; cleans up after."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "RAYLINE_HOME": str(tmp_path / "home"),
        "RAYLINE_DATABASE_URL": module_pg_url.render_as_string(hide_password=False),
        "RAYLINE_ARTIFACT_URI": f"s3://{module_bucket}/artifacts",
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(port),
        "RAYLINE_PROVISION_TIMEOUT_SECONDS": "240",
        "RAYLINE_LOCAL_PORT_RANGE_START": PORT_RANGE_START,
        "RAYLINE_REAPER_INTERVAL_SECONDS": "1",
        "RAYLINE_SERVING_IDLE_SECONDS": str(IDLE_SECONDS),
    }
    process = ManagerProcess(env=env, port=port, log=tmp_path / "manager.log", token=token)
    process.start()
    try:
        yield process
    finally:
        cleanup_clusters(process)
        for client in process.clients:
            client.close()
        process.kill(signal.SIGTERM)


@pytest.fixture
def settings(manager: ManagerProcess) -> Settings:
    """A submitter's settings: the manager's stores, ray-mode serving."""
    return Settings(
        home=Path(manager.env["RAYLINE_HOME"]),
        database_url=manager.env["RAYLINE_DATABASE_URL"],
        artifact_uri=manager.env["RAYLINE_ARTIFACT_URI"],
        cluster_manager_url=manager.url,
        api_token=manager.token,
        local_port_range_start=int(PORT_RANGE_START),
        serving_mode="ray",
        serving_switch_grace_seconds=1,
        serving_start_timeout_seconds=240,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["ray", "docker"])
def mode(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """The serving mode, and the deploy job's extra arguments (Docker: a cleanup label)."""
    if request.param == "ray":
        yield "ray", []
        return
    token: str = request.getfixturevalue("session_token")
    docker: Any = request.getfixturevalue("docker")
    request.getfixturevalue("base_image")
    try:
        yield "docker", ["--label", f"{TEST_LABEL}={token}"]
    finally:
        remove_test_containers_and_images(docker, token)


def deploy(
    client: ClusterManagerClient,
    settings: Settings,
    ref: str,
    cluster: ClusterPublic,
    mode: tuple[str, list[str]],
) -> DeployResult:
    """Run the deploy job of ``ref`` on ``cluster`` and require it to succeed."""
    name, extra = mode
    request = DeployRequest.from_argv(
        ["--model", ref, "--cluster-id", cluster.id, "--mode", name, *extra]
    )
    outcome = run_deploy(
        client, request, settings=settings, on_output=lambda c: print(c, end=""), timeout=900
    )
    assert outcome.result is not None, outcome.job.describe_failure()
    assert isinstance(outcome.result, DeployResult)
    return outcome.result


def test_three_deploys_of_a_model_leave_one_serving_cluster_and_idle_ones_are_reaped(
    manager: ManagerProcess,
    settings: Settings,
    engine: Engine,
    mode: tuple[str, list[str]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    client = manager.client()
    model = f"homes-{secrets.token_hex(3)}"
    store = open_store(settings.artifact_uri, settings)
    for variant in range(3):
        publish_iris(store, engine, tmp_path, name=model, variant=variant)

    # One cluster nobody deploys on, one made without the model label (as before
    # serving clusters were adopted by model); version 1 is served on the latter.
    idle = client.create_cluster(serving_request("idle"))
    legacy = client.wait_until_ready(
        client.create_cluster(serving_request("legacy")).id, timeout=READY_TIMEOUT
    )
    first = deploy(client, settings, f"{model}:1", legacy, mode)

    # Version 2: the model has no home yet, so the labelled request starts one; the
    # superseded version's cluster then backs nothing and is released by the deploy.
    home = client.create_cluster(serving_request("run-2", model))
    assert home.id not in (legacy.id, idle.id)
    home = client.wait_until_ready(home.id, timeout=READY_TIMEOUT)
    second = deploy(client, settings, f"{model}:2", home, mode)
    # Asked for by the deploy job itself, not left for the lifecycle loop to find.
    assert client.get_cluster(legacy.id).state in ("TERMINATING", "TERMINATED")
    assert client.wait_until(legacy.id, state="TERMINATED", timeout=180).state == "TERMINATED"
    reasons = [e.reason or "" for e in client.cluster_events(legacy.id)]
    assert "deleted through the API" in reasons, reasons

    # Version 3: the same request answers with the model's cluster at once.
    again = client.create_cluster(serving_request("run-3", model))
    assert (again.id, again.state) == (home.id, "READY")
    third = deploy(client, settings, f"{model}:3", again, mode)

    ready = client.list_clusters(purpose="serving", state="READY").data
    assert [c.id for c in ready] == [home.id], [(c.id, c.name) for c in ready]
    live = records.list_deployments(engine, model=model, statuses=(DeploymentStatus.LIVE,))
    assert [(d.id, d.cluster_id) for d in live] == [(third.deployment_id, home.id)]
    for old in (first, second):
        assert records.get_deployment(engine, old.deployment_id).status == DeploymentStatus.STOPPED
    [endpoint] = client.live_endpoints(model).data
    assert (endpoint.cluster_id, endpoint.deployment_id) == (home.id, third.deployment_id)
    if mode[0] == "ray":
        # One cluster, one Serve proxy: the port stays across versions (the path does not).
        assert third.port == second.port and third.url != second.url
    else:  # the superseded versions' containers are gone, the live one runs
        docker: Any = request.getfixturevalue("docker")
        filters = [mode[1][1], f"{LABEL_PREFIX}model={model}"]
        containers = docker.containers.list(all=True, filters={"label": filters})
        assert [(c.labels.get(f"{LABEL_PREFIX}deployment"), c.status) for c in containers] == [
            (third.deployment_id, "running")
        ]
    assert third.url is not None
    answer = httpx.post(
        f"{third.url}/v1/models/{model}:predict",
        json={"instances": iris_rows(2, seed=1).tolist()},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["version"] == 3, answer.text

    # The cluster nobody used was reaped by the lifecycle loop, saying why.
    assert client.wait_until(idle.id, state="TERMINATED", timeout=120).state == "TERMINATED"
    reasons = " ".join(e.reason or "" for e in client.cluster_events(idle.id))
    assert "backs no live deployment" in reasons and f"={IDLE_SECONDS}" in reasons
    assert_no_ray_left(idle.id, legacy.id)
