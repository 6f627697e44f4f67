"""Directories only their owner can use, for state kept in shared places like /tmp.

A directory under a world-writable parent can be created first by another user,
who then reads what we put in it or swaps it. So every such directory is created
mode 700 and, when it already exists, used only if it belongs to the current user
and nobody else can write to it; otherwise we stop and say why. Names under /tmp are
random (kept in the user's own home), so nobody can create them in advance.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

__all__ = ["UnsafeDirectoryError", "check_private_dir", "ensure_private_dir", "named_temp_dir"]


class UnsafeDirectoryError(PermissionError):
    """A directory for private state is owned by someone else or writable by others."""


def ensure_private_dir(path: Path | str) -> Path:
    """Create ``path`` mode 700 (parents as needed), or check the existing one.

    Returns:
        The directory.

    Raises:
        UnsafeDirectoryError: it exists but another user owns it, group or others
            may write to it, or it is not a directory (a symlink is not followed).
    """
    directory = Path(path)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    return check_private_dir(directory)


def check_private_dir(path: Path | str) -> Path:
    """Check that ``path`` is a directory of the current user that nobody else may write.

    Raises:
        UnsafeDirectoryError: as for `ensure_private_dir`; also when it does not exist.
    """
    directory = Path(path)
    try:
        info = directory.lstat()
    except FileNotFoundError as exc:
        raise UnsafeDirectoryError(f"{directory} does not exist") from exc
    fix = f"remove it or choose another directory; nothing was written to {directory}"
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectoryError(f"{directory} is not a directory (a link?): {fix}")
    if info.st_uid != os.geteuid():
        raise UnsafeDirectoryError(
            f"{directory} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()}): another user may read or replace what is kept there; {fix}"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeDirectoryError(
            f"{directory} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}): "
            f"they could replace what is kept there; `chmod 700 {directory}` or {fix}"
        )
    return directory


def named_temp_dir(name_file: Path, prefix: str) -> Path:
    """A directory in the system temp dir whose random name is kept in ``name_file``.

    The same user gets the same path on every call (clusters started by one
    manager are found again by the next); another user cannot guess its name.
    The directory itself is made (or checked) by `ensure_private_dir` when used.
    """
    if name_file.is_file():
        name = name_file.read_text().strip()
    else:
        name = f"{prefix}{secrets.token_hex(4)}"
        ensure_private_dir(name_file.parent)
        fd = os.open(name_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(name + "\n")
    if not name.startswith(prefix) or "/" in name or name in (".", ".."):
        raise UnsafeDirectoryError(f"{name_file} names {name!r}, not a {prefix}* directory")
    return Path(tempfile.gettempdir()) / name
