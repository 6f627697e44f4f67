"""The Cluster Manager's bearer token: where it comes from and how it is checked.

In production the token is a setting (``RAYLINE_API_TOKEN``, refused when short).
In development, when none is set, the manager generates one on first start and keeps
it in ``$RAYLINE_HOME/api-token`` (mode 600) so local clients find it without the
secret ever passing through a command line or a log.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from rayline.config import Settings

__all__ = ["resolve_token", "token_file", "tokens_match"]


def token_file(settings: Settings) -> Path:
    """Return the path of the generated development token."""
    return settings.home / "api-token"


def resolve_token(settings: Settings, *, create: bool = False) -> SecretStr | None:
    """Return the API token from the settings, else from the development token file.

    Args:
        settings: Rayline settings.
        create: generate and store a token when there is none (the server does this).

    Returns:
        The token, or None when there is none and ``create`` is False.
    """
    if settings.api_token is not None:
        return settings.api_token
    path = token_file(settings)
    if path.is_file():
        return SecretStr(path.read_text().strip())
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return SecretStr(token)


def tokens_match(presented: str, expected: SecretStr) -> bool:
    """Compare tokens in constant time so timing reveals nothing about the secret."""
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())
