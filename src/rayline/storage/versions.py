"""Immutable, atomically published versions of an artifact.

Layout under the store root::

    <name>/<version_id>/<payload files...>
    <name>/<version_id>/manifest.json     <- written last, create-only

A version exists for readers only once its manifest exists, so an upload that
dies half-way leaves nothing visible. The manifest lists every file with its
size and sha256; fetching a version checks each file against it. The integer
model version numbers live in the metadata store, which keeps the manifest's
sha256 returned here to pin exactly what was published.

Example:
    >>> ref = publish_version(store, "iris", "out/model")  # doctest: +SKIP
    >>> fetch_version(store, "iris", ref.version_id, "/tmp/iris")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    StorageError,
    VersionExistsError,
)
from rayline.storage.keys import join_key, validate_key, validate_name
from rayline.storage.walk import walk_files

if TYPE_CHECKING:
    from rayline.storage.base import ArtifactStore

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestEntry",
    "VersionRef",
    "fetch_version",
    "list_versions",
    "new_version_id",
    "open_version",
    "publish_version",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ManifestEntry:
    """One payload file of a version: its path relative to the version, size, sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The list of files that makes up one published version."""

    name: str
    version_id: str
    created_at: str
    files: tuple[ManifestEntry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT

    @property
    def total_size(self) -> int:
        """Sum of the payload file sizes in bytes."""
        return sum(entry.size for entry in self.files)

    def to_json(self) -> bytes:
        """Serialise to stable, human-readable JSON bytes."""
        doc = {
            "format": self.format,
            "name": self.name,
            "version_id": self.version_id,
            "created_at": self.created_at,
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files],
            "metadata": self.metadata,
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> Manifest:
        """Parse and validate manifest bytes read from ``where``.

        Raises:
            StorageError: If the manifest is malformed (it is then unusable:
                publish the version again).
        """
        try:
            doc = json.loads(data)
            files = tuple(
                ManifestEntry(path=validate_key(f["path"]), size=int(f["size"]), sha256=f["sha256"])
                for f in doc["files"]
            )
            manifest = cls(
                name=doc["name"],
                version_id=doc["version_id"],
                created_at=doc["created_at"],
                files=files,
                metadata=dict(doc.get("metadata") or {}),
                format=int(doc["format"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise StorageError(f"manifest {where} is malformed ({err}); publish again") from err
        if any(not _SHA256_RE.fullmatch(str(e.sha256)) for e in manifest.files):
            raise StorageError(f"manifest {where} has an entry without a valid sha256")
        return manifest


@dataclass(frozen=True)
class VersionRef:
    """What :func:`publish_version` returns, to be recorded in the metadata store.

    Attributes:
        name: Artifact name, e.g. the model name.
        version_id: Unique, time-sortable id of this version.
        uri: URI of the version's directory (``s3://.../name/id``).
        manifest_sha256: sha256 of the manifest bytes; pins every file.
        created_at: ISO-8601 UTC publication time.
        file_count: Number of payload files.
        total_size: Sum of payload sizes in bytes.
    """

    name: str
    version_id: str
    uri: str
    manifest_sha256: str
    created_at: str
    file_count: int
    total_size: int


def new_version_id(now: datetime | None = None) -> str:
    """Return a fresh version id: UTC time to the microsecond plus 32 random bits.

    Ids sort in publication order, and two publishers never pick the same one.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(4)}"


def _manifest_key(name: str, version_id: str) -> str:
    return join_key(name, version_id, MANIFEST_NAME)


def publish_version(
    store: ArtifactStore,
    name: str,
    local_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    version_id: str | None = None,
) -> VersionRef:
    """Upload ``local_dir`` as a new version of ``name``, manifest last.

    Args:
        store: Where to publish.
        name: Artifact name (letters, digits, ``.``, ``_``, ``-``).
        local_dir: Directory whose files make up the version.
        metadata: JSON-serialisable user metadata stored in the manifest.
        version_id: Explicit id (normally generated by :func:`new_version_id`).

    Returns:
        A :class:`VersionRef` with the version URI and the manifest's sha256.

    Raises:
        VersionExistsError: If ``version_id`` was already published.
        InvalidKeyError: If the name, the id or a file path breaks a key rule.
        NotADirectoryError: If ``local_dir`` is not a directory.
        ValueError: If ``local_dir`` is empty or holds a top-level
            ``manifest.json``, or ``metadata`` is not JSON-serialisable.
        StorageUnavailableError: If the backend fails mid-way; the partial
            version stays invisible.
    """
    validate_name(name)
    local_dir = Path(local_dir)
    vid = validate_name(version_id, what="version id") if version_id else new_version_id()
    extra = dict(metadata or {})
    try:
        json.dumps(extra)
    except TypeError as err:
        raise ValueError(f"version metadata must be JSON-serialisable: {err}") from err
    files = list(walk_files(local_dir))
    if not files:
        raise ValueError(f"{local_dir} holds no files; there is nothing to publish")
    if any(rel == MANIFEST_NAME for rel, _ in files):
        raise ValueError(
            f"{local_dir / MANIFEST_NAME} would clash with the version manifest; rename it"
        )
    manifest_key = _manifest_key(name, vid)
    for rel, _ in files:  # fail on a bad file name before uploading anything
        join_key(name, vid, rel)
    if store.exists(manifest_key):
        raise VersionExistsError(
            f"version {vid!r} of {name!r} already exists; versions are immutable, "
            "publish a new one instead"
        )

    entries = _upload_payload(store, name, vid, files)
    manifest = Manifest(
        name=name,
        version_id=vid,
        created_at=datetime.now(UTC).isoformat(),
        files=tuple(entries),
        metadata=extra,
    )
    data = manifest.to_json()
    try:
        store.put_bytes(manifest_key, data, exclusive=True)
    except ArtifactExistsError as err:
        raise VersionExistsError(
            f"version {vid!r} of {name!r} was published concurrently by someone else"
        ) from err
    ref = VersionRef(
        name=name,
        version_id=vid,
        uri=store.uri_for(join_key(name, vid)),
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        created_at=manifest.created_at,
        file_count=len(entries),
        total_size=manifest.total_size,
    )
    logger.info("published %s (%d files, %d bytes)", ref.uri, ref.file_count, ref.total_size)
    return ref


def _upload_payload(
    store: ArtifactStore, name: str, vid: str, files: list[tuple[str, Path]]
) -> list[ManifestEntry]:
    entries: list[ManifestEntry] = []
    try:
        for rel, path in files:
            info = store.put_file(join_key(name, vid, rel), path)
            assert info.sha256 is not None  # every put records one
            entries.append(ManifestEntry(path=rel, size=info.size, sha256=info.sha256))
    except StorageError:
        _discard_partial(store, name, vid)
        raise
    return entries


def _discard_partial(store: ArtifactStore, name: str, vid: str) -> None:
    # Best effort: without a manifest the files are invisible anyway, this only
    # reclaims space. If the backend is down the cleanup fails too; say so.
    prefix = join_key(name, vid)
    try:
        store.abort_incomplete_uploads(prefix)
        store.delete_prefix(prefix)
    except StorageError as err:
        logger.warning(
            "could not clean up the partial upload %s (%s); it is invisible to readers. "
            "Remove it later with store.abort_incomplete_uploads(%r) and "
            "store.delete_prefix(%r)",
            store.uri_for(prefix),
            type(err).__name__,
            prefix,
            prefix,
        )


def list_versions(store: ArtifactStore, name: str) -> list[str]:
    """Return the ids of the published (manifested) versions of ``name``, oldest first."""
    validate_name(name)
    suffix = "/" + MANIFEST_NAME
    found = {
        key.split("/")[1]
        for key in store.list_keys(name)
        if key.count("/") == 2 and key.endswith(suffix)
    }
    return sorted(found)


def open_version(
    store: ArtifactStore,
    name: str,
    version_id: str,
    *,
    expected_manifest_sha256: str | None = None,
) -> Manifest:
    """Read and verify the manifest of a published version.

    Args:
        store: Where the version lives.
        name: Artifact name.
        version_id: The version to open.
        expected_manifest_sha256: The digest recorded at publication (from the
            metadata store); when given the manifest must match it.

    Raises:
        ArtifactNotFoundError: If no such version was (completely) published.
        ChecksumMismatchError: If the manifest does not match its digest.
    """
    return _read_manifest(store, name, version_id, expected_manifest_sha256)[0]


def _read_manifest(
    store: ArtifactStore, name: str, version_id: str, expected: str | None
) -> tuple[Manifest, bytes]:
    validate_name(name)
    validate_name(version_id, what="version id")
    key = _manifest_key(name, version_id)
    try:
        data = store.get_bytes(key, expected_sha256=expected)
    except ArtifactNotFoundError as err:
        raise ArtifactNotFoundError(
            f"version {version_id!r} of {name!r} in {store.uri}",
            "list_versions() shows the published ones; an interrupted upload never becomes visible",
        ) from err
    manifest = Manifest.from_json(data, where=store.uri_for(key))
    if (manifest.name, manifest.version_id) != (name, version_id):
        raise StorageError(
            f"manifest {store.uri_for(key)} describes {manifest.name}/{manifest.version_id}; "
            "it was copied or edited by hand, publish the version again"
        )
    return manifest, data


def fetch_version(
    store: ArtifactStore,
    name: str,
    version_id: str,
    dest: str | os.PathLike[str],
    *,
    expected_manifest_sha256: str | None = None,
) -> Manifest:
    """Download a published version into ``dest``, checking every file's sha256.

    Files are fetched into a hidden staging directory beside ``dest`` that is
    renamed to ``dest`` only when all of them verified, so ``dest`` is either
    complete or absent. ``manifest.json`` is written into ``dest`` as well.

    Raises:
        FileExistsError: If ``dest`` exists and is not an empty directory.
        ArtifactNotFoundError: If the version or one of its files is missing.
        ChecksumMismatchError: If a file differs from the manifest.
    """
    manifest, data = _read_manifest(store, name, version_id, expected_manifest_sha256)
    dest = Path(dest)
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise FileExistsError(f"{dest} already exists and is not empty; fetch into a new path")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".rayline-tmp-{dest.name}-", dir=dest.parent))
    try:
        for entry in manifest.files:
            store.get_file(
                join_key(name, version_id, entry.path),
                staging / entry.path,
                expected_sha256=entry.sha256,
            )
        (staging / MANIFEST_NAME).write_bytes(data)
        if dest.is_dir():
            dest.rmdir()
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest
