"""Finding and fingerprinting dataset files (file:// here; s3:// in the integration tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from rayline.config import Settings
from rayline.training.dataset_uri import parse_dataset_uri
from rayline.training.datasets import (
    fingerprint_frame,
    list_dataset_files,
    load_sklearn_frame,
    peek_columns,
)
from rayline.training.errors import (
    DatasetNotFoundError,
    EmptyDatasetError,
    MissingTargetError,
    NonNumericFeaturesError,
)
from rayline.training.prepare import inspect_dataset
from rayline.training.spec import TrainingSpec, load_spec


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_roots=str(tmp_path))


def test_single_file_hash_is_the_file_sha256(tmp_path: Path, settings: Settings) -> None:
    data = b"a,b,label\n1,2,x\n"
    (tmp_path / "d.csv").write_bytes(data)
    files = list_dataset_files(parse_dataset_uri((tmp_path / "d.csv").as_uri()), settings)
    assert files.paths == (str(tmp_path / "d.csv"),) and files.total_size == len(data)
    assert files.sha256() == hashlib.sha256(data).hexdigest()


def test_directory_skips_hidden_files_and_hashes_names(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "table"
    (root / "year=2024").mkdir(parents=True)
    (root / "year=2024" / "part-0.csv").write_text("a,label\n1,x\n")
    (root / "part-1.csv").write_text("a,label\n2,y\n")
    (root / "_SUCCESS").write_text("")
    (root / ".crc").write_text("junk")
    ref = parse_dataset_uri(root.as_uri() + "/", fmt="csv")
    files = list_dataset_files(ref, settings)
    assert [Path(p).name for p in files.paths] == ["part-1.csv", "part-0.csv"]
    first = files.sha256()
    (root / "part-1.csv").write_text("a,label\n3,y\n")
    assert list_dataset_files(ref, settings).sha256() != first


def test_missing_and_empty(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        list_dataset_files(parse_dataset_uri((tmp_path / "none.csv").as_uri()), settings)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(EmptyDatasetError, match="no rows"):
        list_dataset_files(parse_dataset_uri((tmp_path / "empty.csv").as_uri()), settings)
    (tmp_path / "dir").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no data files"):
        list_dataset_files(parse_dataset_uri((tmp_path / "dir").as_uri(), fmt="csv"), settings)


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "diabetes", "digits"])
def test_bundled_datasets_load_offline(name: str) -> None:
    frame = load_sklearn_frame(name)
    assert "target" in frame.columns and len(frame) > 100
    assert fingerprint_frame(frame) == fingerprint_frame(frame.copy())
    assert fingerprint_frame(frame) != fingerprint_frame(frame.iloc[1:])


def _spec(uri: str, **fields: object) -> TrainingSpec:
    return load_spec(
        {
            "spec_version": 1,
            "name": "peek",
            "dataset": uri,
            "target": "label",
            "task": "classification",
            "framework": "xgboost",
            **fields,
        }
    )


def test_peek_reads_csv_header_and_first_block(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n1,2.5,x\n3,4.5,y\n")
    files = list_dataset_files(parse_dataset_uri((tmp_path / "d.csv").as_uri()), settings)
    columns, rows = peek_columns(files)
    assert rows == 2
    assert {name: str(kind) for name, kind in columns.items()} == {
        "a": "int64",
        "b": "double",
        "label": "string",
    }


def test_peek_reads_the_parquet_footer(tmp_path: Path, settings: Settings) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": [0, 1, 0]}).to_parquet(tmp_path / "d.parquet")
    files = list_dataset_files(parse_dataset_uri((tmp_path / "d.parquet").as_uri()), settings)
    columns, rows = peek_columns(files)
    assert rows == 3 and list(columns) == ["a", "label"]


@pytest.mark.parametrize(
    ("text", "fields", "error", "words"),
    [
        ("a,b,label\n", {}, EmptyDatasetError, ["no rows"]),
        ("a,b,label\n1,2,x\n", {"target": "y"}, MissingTargetError, ["'y'", "'label'"]),
        ("a,colour,label\n1,red,x\n", {}, NonNumericFeaturesError, ["'colour'", "numeric"]),
        ("a,b,label\n1,2,x\n", {"task": "regression"}, NonNumericFeaturesError, ["target"]),
    ],
)
def test_inspect_refuses_bad_data_without_ray(
    tmp_path: Path,
    settings: Settings,
    text: str,
    fields: dict[str, object],
    error: type[Exception],
    words: list[str],
) -> None:
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(error) as caught:
        inspect_dataset(_spec((tmp_path / "d.csv").as_uri(), **fields), settings)
    for word in words:
        assert word in str(caught.value)


def test_inspect_passes_good_data_and_skips_bundled_sets(
    tmp_path: Path, settings: Settings
) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    files = inspect_dataset(_spec((tmp_path / "d.csv").as_uri()), settings)
    assert files is not None and files.paths == (str(tmp_path / "d.csv"),)
    assert inspect_dataset(_spec("sklearn:iris", target="target"), settings) is None
