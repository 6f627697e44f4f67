"""List the files of a local directory for upload, in a stable order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from rayline.storage.errors import StorageError

__all__ = ["walk_files"]


def walk_files(local_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield ``(relative posix path, path)`` for every file below ``local_dir``, sorted.

    Symlinked files are followed (their content is uploaded); symlinked
    directories are refused so a link cannot pull in half the disk or loop.
    """
    if not local_dir.is_dir():
        raise NotADirectoryError(f"{local_dir} is not a directory")
    for dirpath, dirnames, filenames in os.walk(local_dir):
        base = Path(dirpath)
        for dirname in dirnames:
            if (base / dirname).is_symlink():
                raise StorageError(
                    f"{base / dirname} is a symlinked directory; copy it into {local_dir} "
                    "or replace the link with its content before uploading"
                )
        dirnames.sort()
        for filename in sorted(filenames):
            path = base / filename
            if not path.is_file():
                raise StorageError(f"{path} is not a regular file (dangling link, socket, ...)")
            yield path.relative_to(local_dir).as_posix(), path
