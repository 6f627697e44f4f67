"""Each Ray cluster's own auth token: made, kept in a private file, sent as a header.

Ray (2.52+) with ``RAY_AUTH_MODE=token`` refuses dashboard, Jobs API and GCS calls
that do not carry the cluster's token. Every process of a cluster reads it from
the file named by ``RAY_AUTH_TOKEN_PATH``; HTTP clients send it as
``Authorization: Bearer <token>`` (what Ray's dashboard middleware checks).

The token is only ever kept in that mode-600 file inside the cluster's private
state directory: never in the metadata store, never in a log line or command line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = [
    "AUTH_MODE_ENV",
    "TOKEN_FILE_NAME",
    "TOKEN_PATH_ENV",
    "auth_headers",
    "read_token",
    "remove_token",
    "write_new_token",
]

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
TOKEN_FILE_NAME = "ray-auth-token"


def write_new_token(path: Path) -> str:
    """Write a fresh random token (256 bits, hex, as Ray makes them) to ``path``, mode 600.

    An existing file is replaced, so a cluster started again never reuses a token
    another process may have read.

    Returns:
        The token.
    """
    token = secrets.token_hex(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    # O_EXCL: fail rather than write into a file someone slipped in meanwhile.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    return token


def read_token(path: Path) -> str | None:
    """The token kept in ``path``, or None when there is none (a cluster from before tokens)."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def remove_token(path: Path) -> None:
    """Delete the token file, if any (the cluster is gone; nobody needs it)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def auth_headers(token: str | None) -> dict[str, str]:
    """The HTTP headers that authenticate a call to a cluster's dashboard or Jobs API."""
    return {"Authorization": f"Bearer {token}"} if token else {}
