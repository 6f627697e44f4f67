"""Finding and fingerprinting dataset files (file:// here; s3:// in the integration tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rayline.config import Settings
from rayline.training.dataset_uri import parse_dataset_uri
from rayline.training.datasets import fingerprint_frame, list_dataset_files, load_sklearn_frame
from rayline.training.errors import DatasetNotFoundError, EmptyDatasetError


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


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
