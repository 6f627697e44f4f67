"""The artifact store interface shared by every backend.

Public methods validate their input and verify checksums here, once; a
backend only implements the small ``_``-prefixed hooks that move bytes.
"""

from __future__ import annotations

import abc
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar, Self

from rayline.storage.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
)
from rayline.storage.hashing import CHUNK_BYTES, OffsetHashingWriter, Writable
from rayline.storage.keys import RESERVED_PREFIX, join_key, validate_key, validate_prefix
from rayline.storage.walk import walk_files

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["ArtifactStore", "ObjectInfo"]

logger = logging.getLogger(__name__)

TMP_PREFIX = f"{RESERVED_PREFIX}-tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object.

    Attributes:
        key: The object's key relative to the store root.
        size: Size in bytes.
        sha256: Hex sha256 recorded at upload (``None`` if the object was written
            outside Rayline and has none).
    """

    key: str
    size: int
    sha256: str | None


class ArtifactStore(abc.ABC):
    """Put and get files and directories.

    Open one with :func:`rayline.storage.open_store`. Every download is checked
    against the sha256 recorded at upload; a mismatch raises
    :class:`~rayline.storage.errors.ChecksumMismatchError` and leaves nothing behind.
    Immutable published versions are built on these methods by
    :mod:`rayline.storage.versions`, which uses the store and is not used by it.
    """

    scheme: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str, settings: Settings) -> Self:
        """Build the store for ``uri`` (whose scheme is :attr:`scheme`)."""

    @property
    @abc.abstractmethod
    def uri(self) -> str:
        """The store's root URI, e.g. ``s3://bucket/prefix`` or ``file:///dir``."""

    @abc.abstractmethod
    def uri_for(self, key: str) -> str:
        """Return the full URI of ``key`` in this store."""

    # -- hooks a backend implements ------------------------------------------------

    @abc.abstractmethod
    def _put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file under ``key``, recording its sha256."""

    @abc.abstractmethod
    def _put_stream(self, key: str, src: IO[bytes]) -> ObjectInfo:
        """Store everything ``src`` yields under ``key``, recording its sha256."""

    @abc.abstractmethod
    def _put_new(self, key: str, data: bytes, sha256: str) -> ObjectInfo:
        """Create ``key`` holding ``data``; raise ArtifactExistsError if it exists."""

    @abc.abstractmethod
    def _read_into(self, key: str, sink: OffsetHashingWriter) -> ObjectInfo:
        """Write the object's bytes into ``sink`` (seekable); return its *recorded* info."""

    @abc.abstractmethod
    def _stat(self, key: str) -> ObjectInfo:
        """Return the object's recorded info or raise ArtifactNotFoundError."""

    @abc.abstractmethod
    def _list_keys(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix + "/"`` (every key if ``prefix`` is empty)."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None:
        """Delete one object; raise ArtifactNotFoundError if it does not exist."""

    # -- objects --------------------------------------------------------------------

    def put_file(self, key: str, path: str | os.PathLike[str]) -> ObjectInfo:
        """Upload a local file to ``key``; large files go up in parallel parts.

        Args:
            key: Destination key (see :func:`rayline.storage.keys.validate_key`).
            path: Local file to upload.

        Returns:
            The stored object's info, including the sha256 computed on the way.

        Raises:
            InvalidKeyError: If the key breaks a naming rule.
            FileNotFoundError: If ``path`` is not a file.
            StorageUnavailableError: If the backend cannot be reached.
        """
        validate_key(key)
        src = Path(path)
        if not src.is_file():
            raise FileNotFoundError(f"cannot upload {src}: not a regular file")
        return self._put_file(key, src)

    def put_stream(self, key: str, src: IO[bytes]) -> ObjectInfo:
        """Upload everything readable from a binary file object to ``key``."""
        return self._put_stream(validate_key(key), src)

    def put_bytes(self, key: str, data: bytes, *, exclusive: bool = False) -> ObjectInfo:
        """Upload ``data`` to ``key``.

        Args:
            key: Destination key.
            data: The bytes to store.
            exclusive: Refuse to replace an existing object (raises
                :class:`~rayline.storage.errors.ArtifactExistsError`).
        """
        validate_key(key)
        if exclusive:
            return self._put_new(key, data, hashlib.sha256(data).hexdigest())
        return self._put_stream(key, io.BytesIO(data))

    def get_file(
        self,
        key: str,
        dest: str | os.PathLike[str],
        *,
        expected_sha256: str | None = None,
    ) -> ObjectInfo:
        """Download ``key`` to the local path ``dest``, verifying its sha256.

        The bytes land in a temporary file beside ``dest`` and are moved into
        place only after the check passed, so ``dest`` never holds bad data.

        Args:
            key: The object to download.
            dest: Local destination file; parent directories are created.
            expected_sha256: Also require this digest (e.g. from a manifest).

        Returns:
            Info about the object, with the sha256 of the downloaded bytes.

        Raises:
            ArtifactNotFoundError: If the object does not exist.
            ChecksumMismatchError: If the bytes do not match a recorded digest.
            StorageUnavailableError: If the backend cannot be reached.
        """
        validate_key(key)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
        try:
            try:
                info = self._verified_read(key, fd, expected_sha256)
            finally:
                os.close(fd)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return info

    def get_stream(
        self, key: str, sink: Writable, *, expected_sha256: str | None = None
    ) -> ObjectInfo:
        """Download ``key`` and write it into ``sink`` once it has been verified.

        The object is staged in an anonymous temporary file first, so ``sink``
        never receives bytes that failed the check.
        """
        validate_key(key)
        with tempfile.TemporaryFile() as staged:
            info = self._verified_read(key, staged.fileno(), expected_sha256)
            staged.seek(0)
            while chunk := staged.read(CHUNK_BYTES):
                sink.write(chunk)
        return info

    def get_bytes(self, key: str, *, expected_sha256: str | None = None) -> bytes:
        """Download ``key`` into memory, verifying its sha256."""
        buf = io.BytesIO()
        self.get_stream(key, buf, expected_sha256=expected_sha256)
        return buf.getvalue()

    def stat(self, key: str) -> ObjectInfo:
        """Return the recorded size and sha256 of ``key`` without downloading it."""
        return self._stat(validate_key(key))

    def exists(self, key: str) -> bool:
        """Return whether ``key`` exists."""
        try:
            self._stat(validate_key(key))
        except ArtifactNotFoundError:
            return False
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        """Return the sorted keys under the directory-like ``prefix`` ('' = all)."""
        return sorted(self._list_keys(validate_prefix(prefix)))

    def delete(self, key: str) -> None:
        """Delete ``key``; raise ArtifactNotFoundError if it does not exist."""
        self._delete(validate_key(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` and return how many were deleted."""
        root = validate_prefix(prefix)
        if not root:
            raise InvalidKeyError(prefix, "an empty prefix would delete the whole store")
        keys = self.list_keys(root)
        for key in keys:
            self._delete(key)
        return len(keys)

    def abort_incomplete_uploads(self, prefix: str = "") -> int:
        """Abort uploads under ``prefix`` that a crash or outage left unfinished.

        Only meaningful for backends with multipart uploads (S3); the default
        does nothing. Returns how many uploads were aborted.
        """
        validate_prefix(prefix)
        return 0

    # -- directories ----------------------------------------------------------------

    def put_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> list[ObjectInfo]:
        """Upload every file below ``local_dir`` to ``prefix/<relative path>``.

        Raises:
            NotADirectoryError: If ``local_dir`` is not a directory.
            InvalidKeyError: If a file's relative path breaks a key rule.
        """
        root = validate_prefix(prefix)
        files = list(walk_files(Path(local_dir)))
        for rel, _ in files:  # check every name before uploading anything
            join_key(root, rel)
        return [self._put_file(join_key(root, rel), path) for rel, path in files]

    def get_dir(self, prefix: str, dest: str | os.PathLike[str]) -> list[ObjectInfo]:
        """Download every object under ``prefix`` into ``dest``, verifying each.

        Raises:
            ArtifactNotFoundError: If nothing is stored under ``prefix``.
        """
        root = validate_prefix(prefix)
        keys = self.list_keys(root)
        if not keys:
            raise ArtifactNotFoundError(f"prefix {root!r} in {self.uri}", "nothing is stored there")
        skip = len(root) + 1 if root else 0
        target = Path(dest)
        return [self.get_file(key, target / key[skip:]) for key in keys]

    # -- internals --------------------------------------------------------------------

    def _verified_read(self, key: str, fd: int, expected: str | None) -> ObjectInfo:
        writer = OffsetHashingWriter(fd)
        try:
            recorded = self._read_into(key, writer)
            actual, size = writer.finish()
        finally:
            writer.close()
        what = f"object {self.uri_for(key)!r}"
        if recorded.sha256 is None and expected is None:
            raise ChecksumMismatchError(what, None, actual)
        for wanted in (recorded.sha256, expected):
            if wanted is not None and wanted != actual:
                logger.error("checksum mismatch on %s: expected %s got %s", what, wanted, actual)
                raise ChecksumMismatchError(what, wanted, actual)
        return ObjectInfo(key=key, size=size, sha256=actual)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
