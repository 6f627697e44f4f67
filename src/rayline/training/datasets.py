"""Find, fingerprint and read a training dataset.

``file://`` and ``s3://`` data (one CSV or Parquet file, or a directory of them)
is read with Ray Data across the cluster; the scikit-learn bundled datasets are
loaded from the installed package (nothing is downloaded). Every failure to
find or reach the data is raised as a :class:`~rayline.training.errors.DatasetError`
before any training starts.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from rayline.training.dataset_uri import DatasetRef
from rayline.training.errors import (
    DatasetError,
    DatasetNotFoundError,
    DatasetOutsideRootsError,
    DatasetUnreachableError,
    EmptyDatasetError,
)
from rayline.training.filesystems import s3_filesystem

if TYPE_CHECKING:
    import ray.data

    from rayline.config import Settings

__all__ = [
    "SKLEARN_TARGET",
    "DatasetFiles",
    "check_data_roots",
    "describe_error",
    "fingerprint_frame",
    "list_dataset_files",
    "load_sklearn_frame",
    "peek_columns",
    "read_dataset",
]

# The bundled datasets come as a frame whose label column is called this.
SKLEARN_TARGET = "target"
_HASH_CHUNK = 8 * 1024 * 1024
#: Ray Data blocks are cut to about this many bytes of source files.
BLOCK_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class DatasetFiles:
    """The data files behind a ``file://`` or ``s3://`` dataset.

    Attributes:
        ref: The parsed URI.
        filesystem: The pyarrow file system they live on.
        paths: File paths on that file system, sorted.
        total_size: Sum of their sizes in bytes.
    """

    ref: DatasetRef
    filesystem: pafs.FileSystem
    paths: tuple[str, ...]
    total_size: int

    def sha256(self) -> str:
        """Content hash: sha256 of the file for one file, else over (name, sha256) pairs."""
        return self.combine_digests([(path, self._file_sha256(path)) for path in self.paths])

    def combine_digests(self, digests: list[tuple[str, str]]) -> str:
        """The dataset's hash from each file's ``(path, sha256)``, as :meth:`sha256` gives it."""
        if len(digests) == 1:
            return digests[0][1]
        root = self.ref.path.rstrip("/") + "/"
        outer = hashlib.sha256()
        for path, digest in digests:
            outer.update(f"{path.removeprefix(root)}\0{digest}\n".encode())
        return outer.hexdigest()

    def _file_sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        try:
            with self.filesystem.open_input_stream(path) as stream:
                while chunk := stream.read(_HASH_CHUNK):
                    digest.update(chunk)
        except OSError as err:
            raise DatasetUnreachableError(self.ref.uri, describe_error(err)) from None
        return digest.hexdigest()


def _filesystem(ref: DatasetRef, settings: Settings) -> pafs.FileSystem:
    return s3_filesystem(settings) if ref.is_remote else pafs.LocalFileSystem()


def check_data_roots(ref: DatasetRef, settings: Settings, path: str | None = None) -> None:
    """Refuse a ``file://`` dataset outside ``settings.data_root_paths()``; reads nothing.

    Symlinks are resolved first, so a link under a root that points elsewhere
    is refused as well. Other schemes pass.

    Args:
        ref: The dataset.
        settings: For ``RAYLINE_DATA_ROOTS`` (or its defaults).
        path: A file inside the dataset to check instead of the dataset's own path.

    Raises:
        DatasetOutsideRootsError: The path resolves outside every allowed root.
    """
    if ref.scheme != "file":
        return
    given = path or ref.path
    resolved = Path(os.path.realpath(given))
    roots = settings.data_root_paths()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise DatasetOutsideRootsError(ref.uri, str(resolved), [str(r) for r in roots], path=given)


def list_dataset_files(ref: DatasetRef, settings: Settings) -> DatasetFiles:
    """Check that the dataset exists and is not empty; list its files.

    Args:
        ref: A ``file://`` or ``s3://`` dataset.
        settings: For the S3 endpoint and credentials.

    Returns:
        The data files (hidden ``.x`` and ``_x`` files of a directory are skipped).

    Raises:
        DatasetOutsideRootsError: A ``file://`` dataset, or a file in it, is not
            under an allowed root (checked before anything is opened).
        DatasetNotFoundError: Nothing is at the URI, or a directory holds no data files.
        DatasetUnreachableError: The storage cannot be reached or refused access.
        EmptyDatasetError: The files are all empty.
    """
    check_data_roots(ref, settings)
    fs = _filesystem(ref, settings)
    path = ref.path.rstrip("/")
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        else:
            infos = [info]
    except OSError as err:
        raise DatasetUnreachableError(ref.uri, describe_error(err)) from None
    if info.type == pafs.FileType.NotFound:
        raise DatasetNotFoundError(ref.uri)
    files = sorted(
        (i for i in infos if i.type == pafs.FileType.File and not _hidden(i.path, path)),
        key=lambda i: i.path,
    )
    if not files:
        raise DatasetNotFoundError(ref.uri, "the directory holds no data files")
    for file in files:  # a directory may hold symlinks that point out of the roots
        check_data_roots(ref, settings, file.path)
    total = sum(i.size or 0 for i in files)
    if total == 0:
        raise EmptyDatasetError(ref.uri)
    return DatasetFiles(
        ref=ref, filesystem=fs, paths=tuple(i.path for i in files), total_size=total
    )


def _hidden(path: str, root: str) -> bool:
    relative = path.removeprefix(root).strip("/")
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def load_sklearn_frame(name: str) -> pd.DataFrame:
    """Load a dataset bundled with scikit-learn as one frame, label column ``target``."""
    from sklearn import datasets  # imported here: slow, and only this path needs it

    loaders = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
    }
    frame = loaders[name](as_frame=True).frame
    assert isinstance(frame, pd.DataFrame)
    return frame


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """sha256 of a frame's column names and values (row order included)."""
    digest = hashlib.sha256()
    digest.update("\0".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def peek_columns(files: DatasetFiles) -> tuple[dict[str, pa.DataType], int]:
    """Columns (name -> Arrow type) and row count of the first file's first block.

    A cheap look in the job's driver, before Ray is involved: the Parquet
    footer, or the header and first block (~1 MB) of a CSV, typed the way Ray
    Data's reader types them. Enough to refuse a missing target, non-numeric
    features or an empty file in a second; the full read checks again.

    Raises:
        DatasetUnreachableError: The file cannot be read.
        DatasetError: The file is not valid CSV or Parquet.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path, uri = files.paths[0], files.ref.uri
    try:
        if files.ref.format == "parquet":
            with files.filesystem.open_input_file(path) as handle:
                parquet = pq.ParquetFile(handle)
                schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
        else:
            with files.filesystem.open_input_stream(path) as stream:
                reader = pacsv.open_csv(stream)
                schema = reader.schema
                try:
                    rows = reader.read_next_batch().num_rows
                except StopIteration:
                    rows = 0
    except pa.ArrowInvalid as err:
        raise DatasetError(
            f"cannot read dataset {uri} as {files.ref.format}: {describe_error(err)}"
        ) from None
    except OSError as err:
        raise DatasetUnreachableError(uri, describe_error(err)) from None
    return dict(zip(schema.names, schema.types, strict=True)), rows


def read_dataset(
    ref: DatasetRef, settings: Settings, *, files: DatasetFiles | None = None
) -> tuple[ray.data.Dataset, str]:
    """Read the dataset with Ray Data, materialized in the cluster's object store.

    Args:
        ref: The dataset to read.
        settings: For the S3 endpoint and credentials.
        files: Its files, when already listed by :func:`list_dataset_files`.

    Returns:
        ``(dataset, sha256 of its content)``.

    Raises:
        DatasetError: The data is missing, unreachable, empty or unparsable.
    """
    import ray.data
    from ray.exceptions import RayError

    if ref.scheme == "sklearn":
        frame = load_sklearn_frame(ref.path)
        return ray.data.from_pandas(frame).materialize(), fingerprint_frame(frame)
    files = files or list_dataset_files(ref, settings)
    # The content hash reads the files once more from the driver: let it run
    # while Ray Data reads them on the cluster (a daemon thread: a failed read
    # fails the job at once, without waiting for the hash).
    digest: Future[str] = Future()
    threading.Thread(
        target=_resolve, args=(digest, files.sha256), name="rayline-sha256", daemon=True
    ).start()
    try:
        dataset = _lazy_read(ref, files).materialize()
    except RayError as err:
        raise DatasetError(
            f"cannot read dataset {ref.uri} as {ref.format}: {_cause(err)}"
        ) from None
    return dataset, digest.result()


def _resolve(future: Future[str], compute: Callable[[], str]) -> None:
    try:
        future.set_result(compute())
    except BaseException as err:  # handed to whoever waits on the future
        future.set_exception(err)


def _lazy_read(ref: DatasetRef, files: DatasetFiles) -> ray.data.Dataset:
    import ray.data

    paths = list(files.paths)
    # One block per ~BLOCK_BYTES of files, not Ray Data's default of splitting
    # even a small file into dozens: every later pass runs a task per block, and
    # each task running at once needs a worker process of its own (seconds to
    # start on a small host) while a small dataset gains nothing from them.
    blocks = max(1, -(-files.total_size // BLOCK_BYTES))
    if ref.format != "parquet":
        return ray.data.read_csv(paths, filesystem=files.filesystem, override_num_blocks=blocks)
    # Ray Data's DataSourceV2 Parquet reader (the default) lists files through
    # a pool of 32 footer-reading actors, each a new worker process: 15-30 s
    # before the first row on a small cluster. The V1 reader reads the same
    # rows with the same schema from one task.
    context = ray.data.DataContext.get_current()
    default = context.use_datasource_v2
    context.use_datasource_v2 = False
    try:
        return ray.data.read_parquet(paths, filesystem=files.filesystem, override_num_blocks=blocks)
    finally:
        context.use_datasource_v2 = default


def describe_error(err: Exception) -> str:
    """One line of a storage or parse error, at most 300 characters."""
    # pyarrow's messages name the operation and the AWS error code, never the keys.
    return " ".join(str(err).split())[:300]


def _cause(err: BaseException) -> str:
    cause = getattr(err, "cause", None) or err.__cause__ or err
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(cause).__name__
