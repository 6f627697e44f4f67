"""pyarrow file systems for Ray Data reads and Ray Train checkpoints.

Ray Data and Ray Train speak pyarrow, not boto3: this module builds the
``S3FileSystem`` for the configured endpoint (``http`` or ``https``, path-style
as MinIO and versitygw need) and maps the artifact store's URI to the
``(filesystem, path)`` pair Ray Train's ``RunConfig`` takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pyarrow.fs as pafs

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["checkpoint_location", "s3_filesystem"]

# Ray Train's run directories live under this key of the artifact store. It
# cannot clash with a model: model names must start with a letter or digit.
CHECKPOINT_PREFIX = "_train"


def s3_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """An ``S3FileSystem`` for ``settings.s3_endpoint_url`` with the configured keys.

    Time-outs are short and retries few, so an unreachable endpoint fails a
    job in seconds instead of minutes.
    """
    kwargs: dict[str, object] = {
        "region": settings.s3_region,
        "connect_timeout": 5,
        "request_timeout": 60,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    if settings.s3_endpoint_url:
        endpoint = urlsplit(settings.s3_endpoint_url)
        kwargs["endpoint_override"] = endpoint.netloc
        kwargs["scheme"] = endpoint.scheme or "https"
        kwargs["force_virtual_addressing"] = False
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        kwargs["access_key"] = settings.s3_access_key_id.get_secret_value()
        kwargs["secret_key"] = settings.s3_secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**kwargs)


def checkpoint_location(settings: Settings) -> tuple[pafs.FileSystem, str]:
    """Where Ray Train keeps run state and checkpoints: beside the published artifacts.

    Returns:
        ``(filesystem, path)`` for ``RunConfig(storage_filesystem=..., storage_path=...)``:
        ``bucket/prefix/_train`` on S3, ``<dir>/_train`` for a ``file://`` store.

    Raises:
        ValueError: If the artifact URI is neither ``s3://`` nor ``file://``.
    """
    parts = urlsplit(settings.artifact_uri)
    if parts.scheme == "s3":
        root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        return s3_filesystem(settings), f"{root}/{CHECKPOINT_PREFIX}"
    if parts.scheme == "file":
        root = url2pathname(parts.path).rstrip("/")
        return pafs.LocalFileSystem(), f"{root}/{CHECKPOINT_PREFIX}"
    raise ValueError(
        f"cannot checkpoint to artifact store {settings.artifact_uri!r}; set "
        "RAYLINE_ARTIFACT_URI to s3://bucket/prefix or file:///dir"
    )
