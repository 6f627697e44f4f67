"""Throw-away Postgres databases and S3 buckets on the real services, for fixtures."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import URL, create_engine, text

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["delete_bucket", "temporary_bucket", "temporary_database"]


@contextmanager
def temporary_database(admin_url: URL, prefix: str = "rayline_test") -> Iterator[URL]:
    """A new empty database named ``<prefix>_<random>``, dropped (forcibly) on exit."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def delete_bucket(client: S3Client, bucket: str) -> None:
    """Abort pending uploads, delete every object, then the bucket itself."""
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


@contextmanager
def temporary_bucket(client: S3Client, prefix: str) -> Iterator[str]:
    """A new bucket named ``<prefix>-<random>``, emptied and deleted on exit."""
    bucket = f"{prefix}-{secrets.token_hex(5)}"
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        delete_bucket(client, bucket)
