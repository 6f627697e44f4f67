"""``file:///abs/dir`` backend: artifacts in a local (or shared) directory.

Data lives at ``<root>/<key>``; its sha256 lives in a sidecar file at
``<root>/.rayline/sha256/<key>``. An object exists once its sidecar exists,
so a crash between writing the data and the sidecar leaves nothing visible.
Every write goes to a temporary file first and is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self
from urllib.parse import urlsplit
from urllib.request import url2pathname

from rayline.storage.base import TMP_PREFIX, ArtifactStore, ObjectInfo
from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    InvalidKeyError,
    StorageError,
    UnsupportedStoreURIError,
)
from rayline.storage.hashing import CHUNK_BYTES, OffsetHashingWriter, copy_and_hash
from rayline.storage.keys import RESERVED_PREFIX

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["FileArtifactStore"]

_SIDECAR_DIR = Path(RESERVED_PREFIX, "sha256")


class FileArtifactStore(ArtifactStore):
    """Artifact store in a local directory, created on first write."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        """Use ``root`` (an absolute path) as the store's root directory."""
        if not root.is_absolute():
            raise UnsupportedStoreURIError(f"file store root {root} must be an absolute path")
        self._root = root

    @classmethod
    def from_uri(cls, uri: str, settings: Settings) -> Self:
        """Build the store for ``file:///abs/dir`` (settings are not needed)."""
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise UnsupportedStoreURIError(
                f"{uri!r} is not a local directory URI; use file:///absolute/path"
            )
        path = Path(url2pathname(parts.path))
        if not path.is_absolute():
            raise UnsupportedStoreURIError(
                f"{uri!r} has a relative path; use file:///absolute/path"
            )
        return cls(path)

    @property
    def uri(self) -> str:
        """The root directory as a ``file://`` URI."""
        return self._root.as_uri()

    @property
    def root(self) -> Path:
        """The root directory."""
        return self._root

    def uri_for(self, key: str) -> str:
        """Return ``file:///root/key`` (percent-encoded)."""
        return (self._root / key).as_uri()

    # -- paths -------------------------------------------------------------------------

    def _checked(self, key: str, path: Path) -> Path:
        # Keys cannot contain '..', but a symlink inside the root could still
        # point outside it; resolve and refuse anything that leaves the root.
        if not path.resolve().is_relative_to(self._root.resolve()):
            raise InvalidKeyError(key, "resolves outside the store root through a symlink")
        return path

    def _data_path(self, key: str) -> Path:
        return self._checked(key, self._root / key)

    def _sidecar_path(self, key: str) -> Path:
        return self._checked(key, self._root / _SIDECAR_DIR / key)

    def _make_parent(self, key: str, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise StorageError(
                f"cannot store {key!r}: a parent of it is already stored as a file; "
                "choose a key that does not nest under an existing object"
            ) from err
        self._checked(key, path)  # the new directories might hide a symlink race
        if path.is_dir():
            raise StorageError(
                f"cannot store {key!r}: other objects are stored under it as a directory"
            )

    # -- hooks -------------------------------------------------------------------------

    def _put_file(self, key: str, path: Path) -> ObjectInfo:
        with path.open("rb") as src:
            return self._put_stream(key, src)

    def _put_stream(self, key: str, src: IO[bytes]) -> ObjectInfo:
        data_path, sidecar = self._data_path(key), self._sidecar_path(key)
        self._make_parent(key, data_path)
        self._make_parent(key, sidecar)
        tmp = _temp_beside(data_path)
        try:
            with tmp.open("wb") as fh:
                digest, size = copy_and_hash(src, fh)
                _sync(fh)
            os.replace(tmp, data_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _write_replace(sidecar, f"{digest}\n".encode())
        return ObjectInfo(key=key, size=size, sha256=digest)

    def _put_new(self, key: str, data: bytes, sha256: str) -> ObjectInfo:
        data_path, sidecar = self._data_path(key), self._sidecar_path(key)
        if sidecar.exists():
            raise ArtifactExistsError(f"{self.uri_for(key)} already exists")
        self._make_parent(key, data_path)
        self._make_parent(key, sidecar)
        # os.link refuses an existing target: an atomic create-once of full content.
        _link_new(data_path, data, self.uri_for(key))
        _link_new(sidecar, f"{sha256}\n".encode(), self.uri_for(key))
        return ObjectInfo(key=key, size=len(data), sha256=sha256)

    def _read_into(self, key: str, sink: OffsetHashingWriter) -> ObjectInfo:
        info = self._stat(key)
        try:
            with self._data_path(key).open("rb") as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    sink.write(chunk)
        except FileNotFoundError as err:
            raise ArtifactNotFoundError(f"object {self.uri_for(key)!r}") from err
        return info

    def _stat(self, key: str) -> ObjectInfo:
        data_path, sidecar = self._data_path(key), self._sidecar_path(key)
        try:
            recorded = sidecar.read_text().strip()
            size = data_path.stat().st_size
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            raise ArtifactNotFoundError(f"object {self.uri_for(key)!r}") from err
        return ObjectInfo(key=key, size=size, sha256=recorded or None)

    def _list_keys(self, prefix: str) -> Iterator[str]:
        sidecars = self._root / _SIDECAR_DIR
        base = sidecars / prefix if prefix else sidecars
        for dirpath, _dirnames, filenames in os.walk(base):
            rel_dir = Path(dirpath).relative_to(sidecars)
            for filename in filenames:
                if not filename.startswith(RESERVED_PREFIX):
                    yield (rel_dir / filename).as_posix()

    def _delete(self, key: str) -> None:
        self._stat(key)
        # Sidecar first: the object disappears at once, leftover data is invisible.
        self._sidecar_path(key).unlink()
        self._data_path(key).unlink(missing_ok=True)


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    os.close(fd)
    return Path(name)


def _sync(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _write_replace(path: Path, data: bytes) -> None:
    tmp = _temp_beside(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            _sync(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_new(path: Path, data: bytes, uri: str) -> None:
    tmp = _temp_beside(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            _sync(fh)
        os.link(tmp, path)
    except FileExistsError as err:
        raise ArtifactExistsError(f"{uri} already exists") from err
    finally:
        tmp.unlink(missing_ok=True)
