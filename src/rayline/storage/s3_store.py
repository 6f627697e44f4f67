"""``s3://bucket/prefix`` backend: any S3 server (MinIO, versitygw, AWS).

Transfers go through boto3's managed transfer manager (parallel multipart
uploads and ranged downloads, tuned by the ``s3_*`` settings). Each object's
sha256 is stored in its metadata (``x-amz-meta-sha256``) and checked on every
download while the bytes stream in.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.exceptions import RetriesExceededError
from s3transfer.subscribers import BaseSubscriber

from rayline.storage.base import ArtifactStore, ObjectInfo
from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    InvalidKeyError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
    UnsupportedStoreURIError,
)
from rayline.storage.hashing import OffsetHashingWriter, copy_and_hash, sha256_file
from rayline.storage.keys import MAX_KEY_BYTES, validate_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from rayline.config import Settings

__all__ = ["S3ArtifactStore", "make_s3_client", "make_transfer_config"]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
IO_CHUNK_BYTES = 1 * MIB
SHA256_META = "sha256"
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_EXISTS = {"412", "PreconditionFailed", "ConditionalRequestConflict"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}


def make_s3_client(settings: Settings) -> S3Client:
    """Build an S3 client from the settings, configured for our transfers.

    Per-request payload signing and CRC checksums on uploads are turned off:
    every object already carries a sha256 computed from the local file and
    checked against the local file on every download, which covers the same
    ground end to end and saves a full hashing pass on both client and server.
    Response validation stays at botocore's default: with "when_required",
    s3transfer fetches the whole first part before starting the others.
    """
    config = Config(
        max_pool_connections=max(10, settings.s3_max_concurrency * 2),
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=120,
        request_checksum_calculation="when_required",
        s3={
            # Self-hosted endpoints (MinIO, versitygw) need path-style URLs.
            "addressing_style": "path" if settings.s3_endpoint_url else "auto",
            "payload_signing_enabled": False,
        },
    )
    client: S3Client = boto3.session.Session().client(
        "s3", config=config, **settings.s3_client_kwargs()
    )
    return client


def make_transfer_config(settings: Settings) -> TransferConfig:
    """The managed-transfer tuning from the ``s3_*`` settings (see benchmarks/)."""
    return TransferConfig(
        multipart_threshold=settings.s3_multipart_threshold_mb * MIB,
        multipart_chunksize=settings.s3_multipart_chunk_mb * MIB,
        max_concurrency=settings.s3_max_concurrency,
        # Reads of 1 MiB instead of 256 KiB cut the per-chunk Python work of a
        # download by ~40%; 2 MiB and more measured far slower (allocation churn).
        io_chunksize=IO_CHUNK_BYTES,
        use_threads=True,
        preferred_transfer_client="classic",
    )


class ProvideSizeSubscriber(BaseSubscriber):
    """Tell the transfer manager what we already know, saving it a HEAD request.

    Given the ETag too, every ranged GET of a download carries ``If-Match``, so
    an object replaced mid-download fails loudly instead of mixing versions.
    """

    def __init__(self, size: int, etag: str | None = None) -> None:
        self._size = size
        self._etag = etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        """Hand the known size (and ETag) to the transfer before it starts."""
        future.meta.provide_transfer_size(self._size)
        if self._etag is not None:
            future.meta.provide_object_etag(self._etag)


class S3ArtifactStore(ArtifactStore):
    """Artifact store in an S3 bucket under an optional key prefix.

    The bucket is created on first write if it does not exist.
    """

    scheme = "s3"

    def __init__(self, bucket: str, prefix: str, settings: Settings) -> None:
        """Store objects in ``bucket`` under ``prefix`` ('' for the bucket root)."""
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise UnsupportedStoreURIError(
                f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, "
                "digits, '.' and '-')"
            )
        self._bucket = bucket
        self._prefix = validate_prefix(prefix)
        self._endpoint = settings.s3_endpoint_url or "the default AWS endpoint"
        self._client = make_s3_client(settings)
        self._transfer_config = make_transfer_config(settings)
        self._secrets = tuple(
            s.get_secret_value()
            for s in (settings.s3_access_key_id, settings.s3_secret_access_key)
            if s is not None and s.get_secret_value()
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, settings: Settings) -> Self:
        """Build the store for ``s3://bucket[/prefix]``."""
        parts = urlsplit(uri)
        if not parts.netloc or parts.query or parts.fragment:
            raise UnsupportedStoreURIError(f"{uri!r} is not an S3 URI; use s3://bucket/prefix")
        return cls(parts.netloc, parts.path.strip("/"), settings)

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    @property
    def client(self) -> S3Client:
        """The underlying boto3 client (for maintenance and tests)."""
        return self._client

    def uri_for(self, key: str) -> str:
        """Return ``s3://bucket/prefix/key``."""
        return f"s3://{self._bucket}/{self.object_key(key)}"

    def object_key(self, key: str) -> str:
        """Return the full S3 object key for a store key (prefix included)."""
        full = f"{self._prefix}/{key}" if self._prefix else key
        if len(full.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidKeyError(
                key[:64] + "...",
                f"with the store prefix it is longer than S3's {MAX_KEY_BYTES}-byte key limit",
            )
        return full

    # -- hooks -------------------------------------------------------------------------

    def _put_file(self, key: str, path: Path) -> ObjectInfo:
        # S3 takes metadata when an upload starts, so the digest is computed
        # first; the file is then in the page cache for the upload itself.
        digest, size = sha256_file(path)
        self._upload(key, str(path), size, digest)
        return ObjectInfo(key=key, size=size, sha256=digest)

    def _put_stream(self, key: str, src: IO[bytes]) -> ObjectInfo:
        # A stream can be read only once and its digest must be known before the
        # upload starts: spool it (in memory while small), hashing on the way.
        spool_limit = self._transfer_config.multipart_threshold
        with tempfile.SpooledTemporaryFile(max_size=spool_limit) as spool:
            digest, size = copy_and_hash(src, spool)
            spool.seek(0)
            self._upload(key, spool, size, digest)
        return ObjectInfo(key=key, size=size, sha256=digest)

    def _put_new(self, key: str, data: bytes, sha256: str) -> ObjectInfo:
        self._ensure_bucket()
        if self.exists(key):
            raise ArtifactExistsError(f"{self.uri_for(key)} already exists")
        args: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": self.object_key(key),
            "Body": data,
            "Metadata": {SHA256_META: sha256},
        }
        with self._translated("create", key):
            try:
                self._client.put_object(**args, IfNoneMatch="*")
            except ClientError as err:
                if _code(err) in _EXISTS:
                    raise ArtifactExistsError(f"{self.uri_for(key)} already exists") from err
                if _code(err) not in ("NotImplemented", "InvalidArgument"):
                    raise
                # The server cannot do conditional writes: we already checked the
                # key is absent above, and version ids are random, so the only
                # window left is two writers racing on the same explicit id.
                logger.warning("S3 server rejects If-None-Match; using check-then-put")
                self._client.put_object(**args)
        return ObjectInfo(key=key, size=len(data), sha256=sha256)

    def _read_into(self, key: str, sink: OffsetHashingWriter) -> ObjectInfo:
        info, etag = self._head(key)
        with self._translated("download", key), self._transfers() as manager:
            # Parts land at their offsets in parallel; sink hashes them as the
            # contiguous prefix grows, so the digest is ready when the last part is.
            manager.download(
                self._bucket,
                self.object_key(key),
                sink,
                subscribers=[ProvideSizeSubscriber(info.size, etag)],
            ).result()
        return info

    def _stat(self, key: str) -> ObjectInfo:
        return self._head(key)[0]

    def _head(self, key: str) -> tuple[ObjectInfo, str | None]:
        with self._translated("stat", key):
            head = self._client.head_object(Bucket=self._bucket, Key=self.object_key(key))
        info = ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            sha256=head.get("Metadata", {}).get(SHA256_META),
        )
        return info, head.get("ETag")

    def _list_keys(self, prefix: str) -> Iterator[str]:
        base = f"{self._prefix}/" if self._prefix else ""
        search = f"{base}{prefix}/" if prefix else base
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            with self._translated("list", prefix or "/"):
                for page in paginator.paginate(Bucket=self._bucket, Prefix=search):
                    for obj in page.get("Contents", []):
                        yield obj["Key"][len(base) :]
        except ArtifactNotFoundError:  # no bucket yet: nothing stored
            return

    def _delete(self, key: str) -> None:
        self._stat(key)
        with self._translated("delete", key):
            self._client.delete_object(Bucket=self._bucket, Key=self.object_key(key))

    def abort_incomplete_uploads(self, prefix: str = "") -> int:
        """Abort multipart uploads under ``prefix`` left by a crash or an outage.

        The transfer manager aborts a failed upload itself when the server is
        still reachable; this cleans up after the cases where it was not.
        """
        root = validate_prefix(prefix)
        base = f"{self._prefix}/" if self._prefix else ""
        search = f"{base}{root}/" if root else base
        aborted = 0
        try:
            with self._translated("abort the uploads under", root or None):
                paginator = self._client.get_paginator("list_multipart_uploads")
                for page in paginator.paginate(Bucket=self._bucket, Prefix=search):
                    for upload in page.get("Uploads", []):
                        self._client.abort_multipart_upload(
                            Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except ArtifactNotFoundError:  # no bucket, or the upload vanished meanwhile
            pass
        if aborted:
            logger.info("aborted %d incomplete uploads under %s", aborted, self.uri)
        return aborted

    # -- helpers -----------------------------------------------------------------------

    def _upload(self, key: str, source: str | IO[bytes], size: int, digest: str) -> None:
        self._ensure_bucket()
        extra = {"Metadata": {SHA256_META: digest}}
        # On failure the transfer manager aborts the multipart upload itself
        # (when the server is still reachable); no manifest means no version.
        with self._translated("upload", key), self._transfers() as manager:
            manager.upload(
                source,
                self._bucket,
                self.object_key(key),
                extra_args=extra,
                subscribers=[ProvideSizeSubscriber(size)],
            ).result()
        logger.debug("uploaded %s (%d bytes)", self.uri_for(key), size)

    @contextmanager
    def _transfers(self) -> Iterator[Any]:
        with create_transfer_manager(self._client, self._transfer_config) as manager:
            yield manager

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock, self._translated("create bucket", None):
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self._bucket)
            except ClientError as err:
                if _code(err) not in _NOT_FOUND:
                    raise
                self._create_bucket()
            self._bucket_ready = True

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        try:
            if region and region != "us-east-1":
                self._client.create_bucket(
                    Bucket=self._bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                self._client.create_bucket(Bucket=self._bucket)
            logger.info("created bucket %s on %s", self._bucket, self._endpoint)
        except ClientError as err:
            if _code(err) != "BucketAlreadyOwnedByYou":  # a concurrent creator won
                raise

    @contextmanager
    def _translated(self, action: str, key: str | None) -> Iterator[None]:
        """Turn botocore/s3transfer errors into our typed, secret-free errors."""
        try:
            yield
        except ClientError as err:
            raise self._from_client_error(err, action, key) from err
        except NoCredentialsError as err:
            raise StorageAccessDeniedError(
                f"no S3 credentials to {action} {self._where(key)}; set "
                "RAYLINE_S3_ACCESS_KEY_ID and RAYLINE_S3_SECRET_ACCESS_KEY"
            ) from err
        except (BotoCoreError, RetriesExceededError) as err:
            raise StorageUnavailableError(
                f"could not {action} {self._where(key)}: S3 endpoint {self._endpoint} is "
                f"unreachable or dropped the connection ({type(err).__name__}: "
                f"{self._redact(str(err))}). Check that the server is running "
                "(`deploy/services.sh up`) and RAYLINE_S3_ENDPOINT_URL, then retry"
            ) from err

    def _from_client_error(self, err: ClientError, action: str, key: str | None) -> StorageError:
        code = _code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        where = self._where(key)
        message = self._redact(err.response.get("Error", {}).get("Message", ""))
        if code in _NOT_FOUND:
            return ArtifactNotFoundError(f"object {where}")
        if code in _DENIED or status == 403:
            return StorageAccessDeniedError(
                f"S3 refused to {action} {where} ({code}); check RAYLINE_S3_ACCESS_KEY_ID, "
                "RAYLINE_S3_SECRET_ACCESS_KEY and the bucket policy"
            )
        if code in _UNAVAILABLE or status >= 500:
            return StorageUnavailableError(
                f"S3 endpoint {self._endpoint} failed to {action} {where} ({code}: {message}); "
                "retry later"
            )
        return StorageError(f"S3 error {code} while trying to {action} {where}: {message}")

    def _where(self, key: str | None) -> str:
        return repr(self.uri_for(key)) if key else f"bucket {self._bucket!r}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
