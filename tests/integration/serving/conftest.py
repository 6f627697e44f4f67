"""One Cluster Manager, one serving cluster, one bucket and one database per test module.

The serving base image is built once per session and kept between sessions
(the caches under ``RAYLINE_CACHE_DIR`` make a rebuild fast). Every container
and model image a test makes carries the label ``rayline.test=<session token>``
and is removed when the module ends, whatever happened.

Ports: the manager, its clusters and the model containers of these tests take
their Ray ports from 30000 up, away from the clusters other test modules start
at the bottom of the range at the same time (each module has its own lease file).
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import URL, Engine, make_url

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.config import Settings
from rayline.jobs.requests import DeployRequest
from rayline.jobs.serving import DeployOutcome, run_deploy
from rayline.metadata import Deployment, ModelVersion, create_engine_for
from rayline.serving import records
from rayline.serving.base_image import build_base_image
from rayline.serving.docker_engine import LABEL_PREFIX, docker_client
from rayline.storage import ArtifactStore, VersionRef, open_store
from rayline.storage.s3_store import make_s3_client
from tests.integration.conftest import required_env
from tests.integration.manager import ManagerProcess, cleanup_clusters, free_port
from tests.integration.resources import temporary_bucket, temporary_database
from tests.unit.serving.model_factory import IrisModel, publish_iris

READY_TIMEOUT = 300
PORT_RANGE_START = "30000"
SWITCH_GRACE_SECONDS = "3"
TEST_LABEL = f"{LABEL_PREFIX}test"


@pytest.fixture(scope="session")
def session_token() -> str:
    """Labels what this test session creates in Docker."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def docker() -> Iterator[Any]:
    """A client of the Docker engine of `deploy/services.sh`."""
    required_env("DOCKER_HOST")
    client = docker_client(timeout=3600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker: Any) -> str:
    """The serving base image: built on first use, reused by later sessions."""
    report = build_base_image(Settings(), docker, progress=print)
    return report.tag


@dataclass
class ServingEnv:
    """What the tests of a module share."""

    manager: ManagerProcess
    client: ClusterManagerClient
    cluster: ClusterPublic
    settings: Settings  # a submitter's settings: the same stores as the jobs
    engine: Engine
    store: ArtifactStore
    bucket: str
    docker: Any
    label: str
    workdir: Path
    names: list[str] = field(default_factory=list)

    def model_name(self, stem: str) -> str:
        """A model name unique to this session (image names derive from it)."""
        name = f"t{self.label}-{stem}"
        self.names.append(name)
        return name

    def publish(
        self, name: str, *, variant: int = 0, framework: str = "sklearn"
    ) -> tuple[ModelVersion, VersionRef, IrisModel]:
        """Train, publish and register a version of ``name``."""
        return publish_iris(
            self.store, self.engine, self.workdir, name=name, framework=framework, variant=variant
        )

    def deploy_job(self, *args: str, mode: str | None = None) -> DeployOutcome:
        """Run the deploy job of ``ARGS`` (its entrypoint's arguments) on the serving cluster."""
        extra = ["--label", f"{TEST_LABEL}={self.label}", "--cluster-id", self.cluster.id]
        if mode is not None:
            extra += ["--mode", mode]
        return run_deploy(
            self.client,
            DeployRequest.from_argv([*args, *extra]),
            settings=self.settings,
            on_output=lambda chunk: print(chunk, end=""),
            timeout=900,
        )

    def deploy(self, *args: str, mode: str | None = None) -> dict[str, Any]:
        """As :meth:`deploy_job`, and require success; returns the job's result."""
        outcome = self.deploy_job(*args, mode=mode)
        assert outcome.result is not None, outcome.job.describe_failure()
        return dict(outcome.result.model_dump(mode="json"))

    def deployment(self, deployment_id: str) -> Deployment:
        """The deployment row."""
        return records.get_deployment(self.engine, deployment_id)

    def containers(self, **labels: str) -> list[Any]:
        """This session's containers (running or not) carrying every label given."""
        filters = [
            f"{TEST_LABEL}={self.label}",
            *(f"{LABEL_PREFIX}{k}={v}" for k, v in labels.items()),
        ]
        found: list[Any] = self.docker.containers.list(all=True, filters={"label": filters})
        return found


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[URL]:
    """A fresh database for this module, dropped at the end."""
    with temporary_database(make_url(required_env("RAYLINE_PG_URL")), "rayline_serve") as url:
        yield url


@pytest.fixture(scope="module")
def module_bucket() -> Iterator[str]:
    """A fresh bucket on the real S3 server, emptied and removed at the end."""
    for name in (
        "RAYLINE_S3_ENDPOINT_URL",
        "RAYLINE_S3_ACCESS_KEY_ID",
        "RAYLINE_S3_SECRET_ACCESS_KEY",
    ):
        required_env(name)
    with temporary_bucket(make_s3_client(Settings()), "rl-serve") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def serving_env(
    module_pg_url: URL,
    module_bucket: str,
    docker: Any,
    base_image: str,
    session_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServingEnv]:
    """A manager, a READY serving cluster (2 logical CPUs), shared stores, cleanup."""
    home = tmp_path_factory.mktemp("serve-home")
    database_url = module_pg_url.render_as_string(hide_password=False)
    artifact_uri = f"s3://{module_bucket}/artifacts"
    token = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "RAYLINE_HOME": str(home),
        "RAYLINE_DATABASE_URL": database_url,
        "RAYLINE_ARTIFACT_URI": artifact_uri,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(port),
        "RAYLINE_PROVISION_TIMEOUT_SECONDS": "240",
        "RAYLINE_LOCAL_PORT_RANGE_START": PORT_RANGE_START,
        # The module's one serving cluster may back nothing between two tests.
        "RAYLINE_SERVING_IDLE_SECONDS": "3600",
    }
    manager = ManagerProcess(env=env, port=port, log=Path(home, "manager.log"), token=token)
    manager.start()
    client = manager.client()
    engine = create_engine_for(module_pg_url)
    settings = Settings(
        home=home,
        database_url=database_url,
        artifact_uri=artifact_uri,
        cluster_manager_url=manager.url,
        api_token=token,
        local_port_range_start=int(PORT_RANGE_START),
        serving_mode="docker",
        serving_switch_grace_seconds=float(SWITCH_GRACE_SECONDS),
        serving_start_timeout_seconds=240,
    )
    try:
        cluster = client.create_cluster(
            ClusterCreate(
                name="serving-tests",
                purpose=Purpose.SERVING,
                head=ResourceSpec(cpus=2),
                ttl_seconds=3600,
            )
        )
        cluster = client.wait_until_ready(cluster.id, timeout=READY_TIMEOUT)
        yield ServingEnv(
            manager=manager,
            client=client,
            cluster=cluster,
            settings=settings,
            engine=engine,
            store=open_store(artifact_uri, settings),
            bucket=module_bucket,
            docker=docker,
            label=session_token,
            workdir=tmp_path_factory.mktemp("serve-models"),
        )
    finally:
        remove_test_containers_and_images(docker, session_token)
        engine.dispose()
        cleanup_clusters(manager)
        client.close()
        manager.kill(signal.SIGTERM)


def remove_test_containers_and_images(docker: Any, token: str) -> None:
    """Remove every container and model image labelled with this session's token."""
    label = f"{TEST_LABEL}={token}"
    for container in docker.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for image in docker.images.list(filters={"label": label}):
        docker.images.remove(image.id, force=True)


def wait_for(predicate: Any, *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.5)


def post_predict(url: str, model: str, payload: Any, **kwargs: Any) -> httpx.Response:
    """POST a prediction request (``content=`` for raw bodies)."""
    if "content" in kwargs:
        return httpx.post(f"{url}/v1/models/{model}:predict", timeout=60, **kwargs)
    return httpx.post(f"{url}/v1/models/{model}:predict", json=payload, timeout=60, **kwargs)
