"""Parse dataset URIs: ``s3://``, ``file://`` (CSV or Parquet) and bundled ``sklearn:`` sets.

Pure string handling, no I/O: used to validate a spec before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = ["SKLEARN_DATASETS", "DatasetRef", "parse_dataset_uri"]

# The datasets scikit-learn ships inside its wheel: loading them downloads nothing.
SKLEARN_DATASETS = ("iris", "breast_cancer", "diabetes", "digits")

Format = Literal["csv", "parquet"]
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class DatasetRef:
    """A parsed dataset URI.

    Attributes:
        uri: The URI as given.
        scheme: ``s3``, ``file`` or ``sklearn``.
        path: ``bucket/key`` for S3, the absolute local path for files, the
            dataset name for scikit-learn.
        format: ``csv`` or ``parquet`` (``None`` for scikit-learn datasets).
    """

    uri: str
    scheme: Literal["s3", "file", "sklearn"]
    path: str
    format: Format | None

    @property
    def is_remote(self) -> bool:
        """True when the data lives on S3."""
        return self.scheme == "s3"


def parse_dataset_uri(uri: str, *, fmt: Format | None = None) -> DatasetRef:
    """Parse and check a dataset URI.

    Args:
        uri: ``s3://bucket/key.csv``, ``file:///abs/dir/``, ``sklearn:iris`` ...
        fmt: ``csv`` or ``parquet`` when the path's suffix does not tell
            (a directory, or a file without a suffix).

    Returns:
        The parsed reference.

    Raises:
        ValueError: With a message naming what is wrong and the accepted forms.
    """
    uri = uri.strip()
    if uri.startswith("sklearn:"):
        name = uri.removeprefix("sklearn:")
        if name not in SKLEARN_DATASETS:
            shown = ", ".join(f"sklearn:{n}" for n in SKLEARN_DATASETS)
            raise ValueError(f"unknown bundled dataset {uri!r}; choose one of {shown}")
        return DatasetRef(uri=uri, scheme="sklearn", path=name, format=None)
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise ValueError(f"{uri!r} needs a bucket and a key: s3://bucket/path/data.csv")
        path = f"{parts.netloc}/{unquote(key)}"
        scheme: Literal["s3", "file"] = "s3"
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"{uri!r} must be an absolute local path: file:///dir/data.csv")
        path = unquote(parts.path)
        scheme = "file"
    else:
        raise ValueError(
            f"dataset {uri!r} has no supported scheme; use s3://bucket/key.csv, "
            "file:///path/data.parquet or sklearn:iris"
        )
    if ".." in PurePosixPath(path).parts:
        raise ValueError(f"dataset {uri!r} must not contain '..' segments")
    return DatasetRef(uri=uri, scheme=scheme, path=path, format=fmt or _format_of(uri, path))


def _format_of(uri: str, path: str) -> Format:
    suffixes = PurePosixPath(path.rstrip("/")).suffixes
    for suffix in reversed(suffixes):
        if suffix.lower() in _SUFFIXES:
            return _SUFFIXES[suffix.lower()]
    raise ValueError(
        f"cannot tell the format of {uri!r} from its name; name it *.csv or *.parquet, "
        "or set `dataset_format: csv|parquet` in the spec"
    )
