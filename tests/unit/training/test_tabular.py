"""The in-process reader: whole file:// CSV and Parquet datasets with pyarrow, no Ray."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from rayline.config import Settings
from rayline.training.dataset_uri import parse_dataset_uri
from rayline.training.datasets import list_dataset_files, peek_columns
from rayline.training.errors import DatasetError, DatasetNotFoundError, DatasetUnreachableError
from rayline.training.tabular import read_frame


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_roots=str(tmp_path))


FRAME = pd.DataFrame({"a": [1.5, 2.0, 3.25], "b": [1, 2, 3], "label": ["x", "y", "x"]})


def test_csv_reads_every_row_typed_as_the_peek_and_hashed_as_the_file(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(FRAME.to_csv(index=False))
    ref = parse_dataset_uri(path.as_uri())

    loaded = read_frame(ref, settings)

    pd.testing.assert_frame_equal(loaded.frame, FRAME)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.columns == peek_columns(list_dataset_files(ref, settings))[0]
    assert loaded.columns["b"] == pa.int64() and loaded.columns["label"] == pa.string()


def test_parquet_directory_is_one_frame_with_the_directory_hash(
    tmp_path: Path, settings: Settings
) -> None:
    root = tmp_path / "table"
    root.mkdir()
    FRAME.iloc[:2].to_parquet(root / "part-0.parquet", index=False)
    FRAME.iloc[2:].to_parquet(root / "part-1.parquet", index=False)
    (root / "_SUCCESS").write_text("")
    ref = parse_dataset_uri(root.as_uri() + "/", fmt="parquet")

    loaded = read_frame(ref, settings)

    pd.testing.assert_frame_equal(loaded.frame, FRAME)
    assert loaded.sha256 == list_dataset_files(ref, settings).sha256()


def test_bundled_dataset_is_fingerprinted_like_the_ray_path(settings: Settings) -> None:
    loaded = read_frame(parse_dataset_uri("sklearn:iris"), settings)
    assert len(loaded.frame) == 150 and "target" in loaded.columns
    assert loaded.columns["target"] == pa.int64()


def test_bad_files_fail_with_the_dataset_errors(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_frame(parse_dataset_uri((tmp_path / "none.csv").as_uri()), settings)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="as parquet"):
        read_frame(parse_dataset_uri((tmp_path / "bad.parquet").as_uri()), settings)


def test_unreachable_s3_names_the_dataset(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    with pytest.raises(DatasetUnreachableError, match=r"s3://bucket/d\.csv"):
        read_frame(parse_dataset_uri("s3://bucket/d.csv"), settings)
