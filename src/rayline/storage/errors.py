"""Domain errors of the artifact store.

Every error names the object it is about and says how to fix the problem.
None of them ever carries a credential: the S3 backend builds its messages
from error codes, bucket and key names only.
"""

from __future__ import annotations

__all__ = [
    "ArtifactExistsError",
    "ArtifactNotFoundError",
    "ChecksumMismatchError",
    "InvalidKeyError",
    "StorageAccessDeniedError",
    "StorageError",
    "StorageUnavailableError",
    "UnsupportedStoreURIError",
    "VersionExistsError",
]


class StorageError(Exception):
    """Base class of every error raised by :mod:`rayline.storage`."""


class InvalidKeyError(StorageError, ValueError):
    """A key, name or version id breaks one of the naming rules."""

    def __init__(self, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"invalid artifact key {key!r}: {rule}")


class ArtifactNotFoundError(StorageError, LookupError):
    """The object or version does not exist in the store."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        message = f"{what} does not exist"
        super().__init__(f"{message}; {hint}" if hint else message)


class ArtifactExistsError(StorageError):
    """An object that must be created only once already exists."""


class VersionExistsError(ArtifactExistsError):
    """A version with this id was already published; versions are immutable."""


class ChecksumMismatchError(StorageError):
    """Downloaded bytes do not match the recorded sha256; the download was discarded."""

    def __init__(self, what: str, expected: str | None, actual: str) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        if expected is None:
            detail = "no sha256 was recorded for it"
        else:
            detail = f"expected sha256 {expected}, got {actual}"
        super().__init__(
            f"{what} failed its integrity check ({detail}); the downloaded copy was "
            "discarded. The stored object is corrupt or was changed outside Rayline: "
            "publish it again through rayline.storage"
        )


class StorageUnavailableError(StorageError):
    """The storage backend cannot be reached or failed mid-operation."""


class StorageAccessDeniedError(StorageError):
    """The backend refused our credentials or permissions."""


class UnsupportedStoreURIError(StorageError, ValueError):
    """An artifact URI has a scheme or shape no backend understands."""
