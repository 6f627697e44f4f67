"""Dataset URIs: the accepted forms."""

from __future__ import annotations

import pytest

from rayline.training.dataset_uri import SKLEARN_DATASETS, parse_dataset_uri


@pytest.mark.parametrize(
    ("uri", "scheme", "path", "fmt"),
    [
        ("s3://bucket/dir/data.csv", "s3", "bucket/dir/data.csv", "csv"),
        ("s3://bucket/data.parquet", "s3", "bucket/data.parquet", "parquet"),
        ("s3://bucket/part.pq", "s3", "bucket/part.pq", "parquet"),
        ("s3://bucket/logs.csv.gz", "s3", "bucket/logs.csv.gz", "csv"),
        ("file:///tmp/data%20set.csv", "file", "/tmp/data set.csv", "csv"),
        ("file://localhost/tmp/x.parquet", "file", "/tmp/x.parquet", "parquet"),
        ("sklearn:iris", "sklearn", "iris", None),
    ],
)
def test_parses(uri: str, scheme: str, path: str, fmt: str | None) -> None:
    ref = parse_dataset_uri(uri)
    assert (ref.scheme, ref.path, ref.format) == (scheme, path, fmt)
    assert ref.is_remote == (scheme == "s3")


def test_every_bundled_dataset() -> None:
    assert {parse_dataset_uri(f"sklearn:{n}").path for n in SKLEARN_DATASETS} == set(
        SKLEARN_DATASETS
    )


def test_explicit_format_wins() -> None:
    assert parse_dataset_uri("s3://b/export", fmt="parquet").format == "parquet"
