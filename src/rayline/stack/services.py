"""The services under the stack: Postgres, the S3 server and the Docker engine.

They are started, stopped and reported on by `deploy/services.sh` (the one
implementation, also used by CI and make); on them the stack creates its two
databases and its artifact bucket.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

from sqlalchemy import URL, create_engine, make_url, text

from rayline.stack.config import SERVICES_SCRIPT, Report, StackConfig, read_services_env
from rayline.stack.errors import StackError

__all__ = [
    "SERVICES",
    "create_databases",
    "database_url",
    "ensure_bucket",
    "run_services_script",
    "service_addresses",
    "services_up",
]

SERVICES = ("postgres", "s3", "docker")


def run_services_script(config: StackConfig, *args: str) -> str:
    """``deploy/services.sh ARGS`` on this stack's ports and dir; its output.

    Raises:
        StackError: the script failed (its stderr is in the message).
    """
    env = {
        **os.environ,
        "RAYLINE_SERVICES_DIR": str(config.services_dir),
        "RAYLINE_PG_PORT": str(config.pg_port),
        "RAYLINE_S3_PORT": str(config.s3_port),
    }
    done = subprocess.run(
        [str(SERVICES_SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StackError(f"deploy/services.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def services_up(config: StackConfig) -> set[str]:
    """The services that answer now."""
    out = run_services_script(config, "status", *SERVICES)
    return {
        line.split(":", 1)[0]
        for line in out.splitlines()
        if line.split(": ", 1)[-1].startswith("up")
    }


def service_addresses(config: StackConfig) -> dict[str, str]:
    """Where each service answers (for ``stack status``)."""
    return {
        "postgres": f"postgresql://127.0.0.1:{config.pg_port}",
        "s3": f"http://127.0.0.1:{config.s3_port}",
        "docker": f"unix://{config.services_dir / 'docker' / 'docker.sock'}",
    }


def _admin_url(config: StackConfig) -> URL:
    return make_url(read_services_env(config.services_dir)["RAYLINE_PG_URL"])


def database_url(config: StackConfig, database: str) -> str:
    """``database`` on the stack's Postgres, with its password: never print it."""
    return _admin_url(config).set(database=database).render_as_string(hide_password=False)


def create_databases(config: StackConfig, report: Report) -> None:
    """Create our metadata database and Airflow's unless they exist."""
    engine = create_engine(_admin_url(config), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            existing = set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
            for name in (config.database, config.airflow_database):
                if name not in existing:
                    report(f"creating database {name}")
                    # A checked plain name (StackConfig): safe to quote in.
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def ensure_bucket(config: StackConfig, env: Mapping[str, str], report: Report) -> None:
    """Create the artifact bucket: Ray Train's storage refuses to create one."""
    from botocore.exceptions import ClientError
    from pydantic import SecretStr

    from rayline.config import Settings
    from rayline.storage.s3_store import make_s3_client

    client = make_s3_client(
        Settings(
            s3_endpoint_url=env["RAYLINE_S3_ENDPOINT_URL"],
            s3_access_key_id=SecretStr(env["RAYLINE_S3_ACCESS_KEY_ID"]),
            s3_secret_access_key=SecretStr(env["RAYLINE_S3_SECRET_ACCESS_KEY"]),
        )
    )
    try:
        client.head_bucket(Bucket=config.bucket)
    except ClientError:
        report(f"creating bucket {config.bucket}")
        client.create_bucket(Bucket=config.bucket)
