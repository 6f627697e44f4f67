"""A real MLflow tracking server from ``deploy/mlflow.sh``, for the tracking tests.

Its backend store is a fresh database on the real Postgres and its artifacts go to a
fresh bucket of the real S3 server; port and state dir are its own. The server is
stopped and the database and bucket removed at the end, also when a test failed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from rayline.config import Settings
from rayline.storage.s3_store import make_s3_client
from tests.integration.conftest import required_env
from tests.integration.manager import free_port
from tests.integration.resources import delete_bucket

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "deploy" / "mlflow.sh"


@dataclass
class MlflowServer:
    """One server started by the script, and how to drive the script again."""

    url: str
    state_dir: Path
    database: str
    bucket: str
    env: dict[str, str] = field(repr=False)

    def script(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``deploy/mlflow.sh COMMAND`` with this server's settings."""
        result = subprocess.run(
            [str(SCRIPT), command], env=self.env, capture_output=True, text=True, check=False
        )
        if check:
            assert result.returncode == 0, f"mlflow.sh {command}: {result.stderr}"
        return result


@contextmanager
def started_server(state: Path) -> Iterator[MlflowServer]:
    """A server of this module's docstring, stopped and removed however the block ends."""
    pg_url = make_url(required_env("RAYLINE_PG_URL"))
    required_env("RAYLINE_S3_ENDPOINT_URL")
    database = f"rl_mlflow_{secrets.token_hex(5)}"
    bucket = f"rl-mlflow-{secrets.token_hex(5)}"
    port = free_port()
    env = {
        **os.environ,
        "RAYLINE_MLFLOW_DIR": str(state),
        "RAYLINE_MLFLOW_PORT": str(port),
        "RAYLINE_MLFLOW_DATABASE": database,
        "RAYLINE_MLFLOW_ARTIFACTS": f"s3://{bucket}/mlflow",
        "RAYLINE_MLFLOW_WORKERS": "1",
    }
    server = MlflowServer(f"http://127.0.0.1:{port}", state, database, bucket, env)
    try:
        server.script("up")
        yield server
    finally:
        server.script("down", check=False)
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        s3 = make_s3_client(Settings())
        if bucket in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            delete_bucket(s3, bucket)


@pytest.fixture(scope="package")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The package's shared server; tests never stop it."""
    with started_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture
def own_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A server of one test's own, which that test may stop and start again."""
    with started_server(tmp_path_factory.mktemp("own-mlflow-server")) as server:
        yield server


# The training tests' shared Ray cluster, database and bucket: tracked runs use them too.
from tests.integration.training.conftest import (  # noqa: E402
    package_bucket,
    package_pg_url,
    training_env,
)

__all__ = [
    "MlflowServer",
    "package_bucket",
    "package_pg_url",
    "started_server",
    "training_env",
]
