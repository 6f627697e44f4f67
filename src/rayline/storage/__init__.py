"""Artifact storage: one interface, a ``file://`` and an ``s3://`` backend.

Example:
    >>> store = open_store("file:///tmp/rayline-artifacts")  # doctest: +SKIP
    >>> ref = publish_version(store, "iris", "out/model")  # doctest: +SKIP
    >>> fetch_version(store, "iris", ref.version_id, "/tmp/iris")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rayline.storage.base import ArtifactStore, ObjectInfo
from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
    UnsupportedStoreURIError,
    VersionExistsError,
)
from rayline.storage.file_store import FileArtifactStore
from rayline.storage.s3_store import S3ArtifactStore
from rayline.storage.versions import (
    Manifest,
    ManifestEntry,
    VersionRef,
    fetch_version,
    list_versions,
    open_version,
    publish_version,
)

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "STORE_BACKENDS",
    "ArtifactExistsError",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "ChecksumMismatchError",
    "InvalidKeyError",
    "Manifest",
    "ManifestEntry",
    "ObjectInfo",
    "StorageAccessDeniedError",
    "StorageError",
    "StorageUnavailableError",
    "UnsupportedStoreURIError",
    "VersionExistsError",
    "VersionRef",
    "fetch_version",
    "list_versions",
    "open_store",
    "open_version",
    "publish_version",
]

# URI scheme -> backend class. Add new ones here.
STORE_BACKENDS: dict[str, type[ArtifactStore]] = {
    "file": FileArtifactStore,
    "s3": S3ArtifactStore,
}


def open_store(uri: str | None = None, settings: Settings | None = None) -> ArtifactStore:
    """Open the artifact store at ``uri`` (default: ``settings.artifact_uri``).

    Args:
        uri: ``file:///absolute/dir`` or ``s3://bucket/prefix``.
        settings: Settings for endpoints, credentials and transfer tuning;
            :func:`rayline.config.get_settings` when omitted.

    Returns:
        The store; nothing is created until the first write.

    Raises:
        UnsupportedStoreURIError: If the scheme has no backend or the URI is malformed.
    """
    if settings is None:
        from rayline.config import get_settings

        settings = get_settings()
    target = uri or settings.artifact_uri
    scheme = urlsplit(target).scheme.lower()
    backend = STORE_BACKENDS.get(scheme)
    if backend is None:
        supported = ", ".join(f"{name}://" for name in sorted(STORE_BACKENDS))
        raise UnsupportedStoreURIError(
            f"no artifact store backend for {target!r}; supported schemes: {supported} "
            "(e.g. file:///var/lib/rayline/artifacts or s3://bucket/prefix)"
        )
    return backend.from_uri(target, settings)
