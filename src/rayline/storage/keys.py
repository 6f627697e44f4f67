"""Naming rules for keys, artifact names and version ids.

A key is a relative, ``/``-separated path such as ``iris/2025.../model.pkl``.
The same rules hold on every backend, so a key that works on ``file://`` also
works on S3 and cannot escape a directory root.
"""

from __future__ import annotations

import re

from rayline.storage.errors import InvalidKeyError

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_NAME_CHARS",
    "MAX_SEGMENT_BYTES",
    "RESERVED_PREFIX",
    "join_key",
    "validate_key",
    "validate_name",
    "validate_prefix",
]

MAX_KEY_BYTES = 1024  # S3's own limit on a whole object key
MAX_SEGMENT_BYTES = 255  # the usual file-name limit of local file systems
MAX_NAME_CHARS = 128
# Names starting with this are the store's own bookkeeping (checksum sidecars,
# temporary files), so user keys may not use them.
RESERVED_PREFIX = ".rayline"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_chars(key: str) -> None:
    for ch in key:
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            raise InvalidKeyError(key, f"control character {ch!r} is not allowed")
    if "\\" in key:
        raise InvalidKeyError(key, "backslashes are not allowed; use '/' between segments")


def _check_segments(key: str) -> None:
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKeyError(key, "empty path segment ('//' or trailing '/')")
        if segment in (".", ".."):
            raise InvalidKeyError(key, f"'{segment}' segments are not allowed")
        if segment.startswith(RESERVED_PREFIX):
            raise InvalidKeyError(key, f"segments starting with {RESERVED_PREFIX!r} are reserved")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKeyError(key, f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe relative object key and return it.

    Args:
        key: A relative path with ``/`` separators.

    Returns:
        The key, unchanged.

    Raises:
        InvalidKeyError: If the key is empty, absolute, longer than 1024 bytes in
            UTF-8, contains backslashes, NUL or other control characters, or has
            empty, ``.``, ``..`` or reserved (``.rayline*``) segments.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(repr(key), "keys must be strings")
    if not key:
        raise InvalidKeyError(key, "keys must not be empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(key[:64] + "...", f"longer than {MAX_KEY_BYTES} bytes in UTF-8")
    _check_chars(key)
    if key.startswith("/"):
        raise InvalidKeyError(key, "absolute keys are not allowed; drop the leading '/'")
    _check_segments(key)
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a key prefix; the empty string (the whole store) is allowed.

    A trailing ``/`` is dropped, so ``"models/"`` and ``"models"`` are the same prefix.
    """
    stripped = prefix[:-1] if prefix.endswith("/") else prefix
    return validate_key(stripped) if stripped else ""


def validate_name(name: str, *, what: str = "artifact name") -> str:
    """Check an artifact name or version id: one segment of ``[A-Za-z0-9._-]``.

    Args:
        name: The name to check.
        what: What the name is, for the error message.

    Returns:
        The name, unchanged.

    Raises:
        InvalidKeyError: If the name is empty, longer than 128 characters, or has
            characters other than letters, digits, ``.``, ``_`` and ``-`` (first
            character a letter or digit).
    """
    if not isinstance(name, str) or not name:
        raise InvalidKeyError(repr(name), f"{what} must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidKeyError(name[:64] + "...", f"{what} is longer than {MAX_NAME_CHARS} chars")
    if not _NAME_RE.fullmatch(name):
        raise InvalidKeyError(
            name,
            f"{what} must start with a letter or digit and use only letters, digits, "
            "'.', '_' and '-'",
        )
    return name


def join_key(*parts: str) -> str:
    """Join non-empty key parts with ``/`` and validate the result."""
    return validate_key("/".join(p for p in parts if p))
