"""Read a whole dataset into one pandas frame with pyarrow, in this process.

The single-worker runtime's reader: no Ray Data, no cluster. Each file of a
``file://`` or ``s3://`` dataset (S3 through the configured endpoint) is read
once into memory, hashed from that buffer (the same sha256 as
:meth:`~rayline.training.datasets.DatasetFiles.sha256`) and parsed from it
with pyarrow's CSV or Parquet reader, which types columns exactly as Ray
Data's readers do. Bundled ``sklearn:`` datasets come from the installed package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from rayline.training.datasets import (
    DatasetFiles,
    describe_error,
    fingerprint_frame,
    list_dataset_files,
    load_sklearn_frame,
)
from rayline.training.errors import DatasetError, DatasetUnreachableError

if TYPE_CHECKING:
    from rayline.config import Settings
    from rayline.training.dataset_uri import DatasetRef

__all__ = ["LoadedFrame", "read_frame", "read_table"]


@dataclass(frozen=True)
class LoadedFrame:
    """A dataset read into memory.

    Attributes:
        frame: Every row, columns in dataset order.
        columns: Column name -> Arrow type, as Ray Data's schema would give them.
        sha256: Content hash (lineage), the same as the Ray Data path records.
    """

    frame: pd.DataFrame
    columns: dict[str, pa.DataType]
    sha256: str


def read_frame(
    ref: DatasetRef, settings: Settings, *, files: DatasetFiles | None = None
) -> LoadedFrame:
    """Read the whole dataset into one frame.

    Args:
        ref: The dataset.
        settings: For the S3 endpoint and credentials.
        files: Its files, when already listed by :func:`list_dataset_files`.

    Raises:
        DatasetError: (or a subclass) the data is missing, unreachable or unparsable.
    """
    if ref.scheme == "sklearn":
        frame = load_sklearn_frame(ref.path)
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        columns = dict(zip(schema.names, schema.types, strict=True))
        return LoadedFrame(frame=frame, columns=columns, sha256=fingerprint_frame(frame))
    table, digest = read_table(files or list_dataset_files(ref, settings))
    columns = dict(zip(table.schema.names, table.schema.types, strict=True))
    return LoadedFrame(frame=table.to_pandas(), columns=columns, sha256=digest)


def read_table(files: DatasetFiles) -> tuple[pa.Table, str]:
    """Every file of the dataset as one Arrow table, and the dataset's sha256.

    Files whose schemas differ are concatenated with pyarrow's type promotion
    (a column missing from one file is null there), as Ray Data unifies them.

    Raises:
        DatasetUnreachableError: A file cannot be read from its storage.
        DatasetError: A file is not valid CSV or Parquet, or the files do not fit together.
    """
    tables, digests = [], []
    for path in files.paths:
        data = _read_bytes(files, path)
        if not data and len(files.paths) > 1:
            continue  # an empty part of a directory holds no rows (all empty: refused earlier)
        digests.append((path, hashlib.sha256(data).hexdigest()))
        tables.append(_parse(files, data))
    try:
        table = (
            tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DatasetError(
            f"cannot read dataset {files.ref.uri} as one table: {describe_error(err)}; "
            "give every file the same columns"
        ) from None
    return table, files.combine_digests(digests)


def _read_bytes(files: DatasetFiles, path: str) -> bytes:
    try:
        with files.filesystem.open_input_stream(path) as stream:
            data: bytes = stream.read()
    except OSError as err:
        raise DatasetUnreachableError(files.ref.uri, describe_error(err)) from None
    return data


def _parse(files: DatasetFiles, data: bytes) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if files.ref.format == "parquet":
            return pq.read_table(pa.BufferReader(data))
        return pacsv.read_csv(pa.BufferReader(data))
    except pa.ArrowInvalid as err:
        raise DatasetError(
            f"cannot read dataset {files.ref.uri} as {files.ref.format}: {describe_error(err)}"
        ) from None
