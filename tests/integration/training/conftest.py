"""One Cluster Manager, one Ray cluster, one bucket and one database for these tests.

Starting a Ray cluster costs ~10-20 s on this 2-core host, so the tests of this
package share one: a single node with 3 logical CPUs, from a
real Cluster Manager on real Postgres, artifacts in a fresh bucket of the real
S3 server.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, Engine, make_url

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterFailedError
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.config import Settings
from rayline.metadata import create_engine_for
from rayline.storage.s3_store import make_s3_client
from tests.integration.conftest import required_env
from tests.integration.manager import ManagerProcess, cleanup_clusters, free_port
from tests.integration.resources import temporary_bucket, temporary_database

READY_TIMEOUT = 660  # a busy 2-core host can take minutes to start 3 nodes


@dataclass
class TrainingEnv:
    """What the training tests share."""

    manager: ManagerProcess
    client: ClusterManagerClient
    cluster: ClusterPublic
    settings: Settings  # the settings a submitter uses: same stores as the job
    engine: Engine  # the metadata store (the manager's database)
    bucket: str

    @property
    def job_api_url(self) -> str:
        assert self.cluster.job_api_url is not None
        return self.cluster.job_api_url

    def s3_put(self, key: str, data: bytes) -> str:
        """Upload ``data`` to the test bucket; return its ``s3://`` URI."""
        make_s3_client(self.settings).put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"


@pytest.fixture(scope="package")
def package_pg_url() -> Iterator[URL]:
    """A fresh database for these tests, dropped at the end."""
    with temporary_database(make_url(required_env("RAYLINE_PG_URL")), "rayline_train") as url:
        yield url


@pytest.fixture(scope="package")
def package_bucket() -> Iterator[str]:
    """A fresh bucket on the real S3 server, emptied and removed at the end."""
    with temporary_bucket(make_s3_client(_s3_settings()), "rl-train") as bucket:
        yield bucket


def _s3_settings(**overrides: Any) -> Settings:
    required_env("RAYLINE_S3_ENDPOINT_URL")
    required_env("RAYLINE_S3_ACCESS_KEY_ID")
    required_env("RAYLINE_S3_SECRET_ACCESS_KEY")
    return Settings(**overrides)  # endpoint and keys come from the environment


@pytest.fixture(scope="package")
def training_env(
    package_pg_url: URL, package_bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrainingEnv]:
    """A manager, a READY one-node cluster (3 CPUs), shared stores."""
    home = tmp_path_factory.mktemp("train-home")
    database_url = package_pg_url.render_as_string(hide_password=False)
    token = secrets.token_urlsafe(32)
    port = free_port()
    manager = ManagerProcess(
        env={
            **os.environ,
            "RAYLINE_HOME": str(home),
            "RAYLINE_DATABASE_URL": database_url,
            "RAYLINE_API_TOKEN": token,
            "RAYLINE_API_PORT": str(port),
            "RAYLINE_PROVISION_TIMEOUT_SECONDS": "600",
            # Port leases are per RAYLINE_HOME: keep clear of other managers' default range.
            "RAYLINE_LOCAL_PORT_RANGE_START": "14000",
            "RAYLINE_LOCAL_PORT_RANGE_END": "18000",
        },
        port=port,
        log=Path(home, "manager.log"),
        token=token,
    )
    manager.start()
    client = manager.client()
    engine = create_engine_for(package_pg_url)
    try:
        cluster = _ready_cluster(client)
        settings = _s3_settings(
            home=home,
            database_url=database_url,
            artifact_uri=f"s3://{package_bucket}/artifacts",
        )
        yield TrainingEnv(
            manager=manager,
            client=client,
            cluster=cluster,
            settings=settings,
            engine=engine,
            bucket=package_bucket,
        )
    finally:
        engine.dispose()
        cleanup_clusters(manager)
        client.close()
        manager.kill(signal.SIGTERM)


def _ready_cluster(client: ClusterManagerClient) -> ClusterPublic:
    """The shared cluster; one more try if Ray times out starting on a busy host."""
    request = ClusterCreate(
        name="training-tests",
        purpose=Purpose.TRAINING,
        # One node with 3 logical CPUs (2 training workers + the driver's data
        # tasks): on a busy 2-core host every extra node is one more chance for
        # `ray start` to time out. Multi-node placement is the backend's concern.
        head=ResourceSpec(cpus=3),
        worker_count=0,
        ttl_seconds=3600,
    )
    try:
        return client.wait_until_ready(client.create_cluster(request).id, timeout=READY_TIMEOUT)
    except ClusterFailedError as first:
        print(f"cluster failed to start, trying once more: {first}")
        return client.wait_until_ready(client.create_cluster(request).id, timeout=READY_TIMEOUT)
