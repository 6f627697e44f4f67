"""What the MLflow server needs before it starts: its database and its artifact bucket.

``deploy/mlflow.sh up`` runs ``python -m rayline.tracking.server_setup``: it creates
the database ``RAYLINE_MLFLOW_DATABASE`` on the Postgres of ``RAYLINE_PG_URL`` and the
bucket of ``RAYLINE_MLFLOW_ARTIFACTS`` on the S3 server of Rayline's settings, each
only when missing. ``--print-store-uri`` prints the backend store URI instead (it holds
the password: the script keeps it in the server's environment, never on a command line).
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlparse

from sqlalchemy import URL, create_engine, make_url, text

__all__ = ["ensure_bucket", "ensure_database", "main", "store_url"]


def store_url(pg_url: str, database: str) -> URL:
    """The MLflow backend store: Rayline's Postgres server, database ``database``."""
    return make_url(pg_url).set(database=database)


def ensure_database(pg_url: str, database: str) -> bool:
    """Create ``database`` (owned by the URL's user) unless it exists; True if created."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r}: use letters, digits and _ only")
    engine = create_engine(make_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            ).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{database}"'))
            return True
    finally:
        engine.dispose()


def ensure_bucket(artifacts_uri: str) -> bool:
    """Create the bucket of an ``s3://bucket/prefix`` URI unless it exists; True if created."""
    import boto3
    from botocore.exceptions import ClientError

    from rayline.config import get_settings

    parsed = urlparse(artifacts_uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"artifact destination {artifacts_uri!r} must be s3://BUCKET/PREFIX")
    client = boto3.client("s3", **get_settings().s3_client_kwargs())
    try:
        client.head_bucket(Bucket=parsed.netloc)
        return False
    except ClientError:
        client.create_bucket(Bucket=parsed.netloc)
        return True


def main(argv: list[str] | None = None) -> int:
    """Create what is missing (or print the store URI); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rayline.tracking.server_setup")
    parser.add_argument("--print-store-uri", action="store_true")
    args = parser.parse_args(argv)
    pg_url = os.environ.get("RAYLINE_PG_URL", "")
    database = os.environ.get("RAYLINE_MLFLOW_DATABASE", "mlflow")
    if not pg_url:
        print("RAYLINE_PG_URL is not set: source services.env", file=sys.stderr)
        return 2
    if args.print_store_uri:
        print(store_url(pg_url, database).render_as_string(hide_password=False))
        return 0
    if ensure_database(pg_url, database):
        print(f"[mlflow] created database {database}", file=sys.stderr)
    artifacts = os.environ.get("RAYLINE_MLFLOW_ARTIFACTS", "s3://rayline/mlflow")
    if ensure_bucket(artifacts):
        print(f"[mlflow] created bucket of {artifacts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
