"""``file://`` datasets are read only under the allowed roots (``RAYLINE_DATA_ROOTS``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rayline.config import Settings
from rayline.training import datasets
from rayline.training.dataset_uri import parse_dataset_uri
from rayline.training.datasets import list_dataset_files
from rayline.training.errors import DatasetError, DatasetOutsideRootsError
from rayline.training.prechecks import check_training_input
from rayline.training.tabular import read_frame

CSV = "a,label\n1,x\n2,y\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "d.csv").write_text(CSV)
    return allowed


@pytest.fixture
def settings(tmp_path: Path, root: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_roots=str(root))


def _never_opened(*args: Any) -> Any:
    raise AssertionError("the file system was touched before the roots were checked")


def test_a_file_outside_the_roots_is_refused_before_anything_is_read(
    settings: Settings, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "_filesystem", _never_opened)
    with pytest.raises(DatasetOutsideRootsError) as caught:
        list_dataset_files(parse_dataset_uri("file:///etc/shadow", fmt="csv"), settings)
    message = str(caught.value)
    assert "file:///etc/shadow" in message and str(root) in message
    assert "`dataset`" in message and "RAYLINE_DATA_ROOTS" in message
    assert isinstance(caught.value, DatasetError)  # bad input: the job is not retried


def test_a_file_under_a_root_is_read(settings: Settings, root: Path) -> None:
    files = list_dataset_files(parse_dataset_uri((root / "d.csv").as_uri()), settings)
    assert files.paths == (str(root / "d.csv"),)
    assert len(read_frame(files.ref, settings, files=files).frame) == 2


def test_a_symlink_out_of_a_root_is_refused(tmp_path: Path, settings: Settings, root: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(CSV)
    (root / "link.csv").symlink_to(secret)
    with pytest.raises(DatasetOutsideRootsError, match="resolves to"):
        list_dataset_files(parse_dataset_uri((root / "link.csv").as_uri()), settings)
    (root / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DatasetOutsideRootsError):
        read_frame(parse_dataset_uri((root / "linked-dir" / "secret.csv").as_uri()), settings)


def test_a_symlink_inside_a_dataset_directory_is_refused(
    tmp_path: Path, settings: Settings, root: Path
) -> None:
    table = root / "table"
    table.mkdir()
    (table / "part-0.csv").write_text(CSV)
    (tmp_path / "secret.csv").write_text(CSV)
    (table / "part-1.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(DatasetOutsideRootsError, match=r"part-1\.csv"):
        list_dataset_files(parse_dataset_uri(table.as_uri() + "/", fmt="csv"), settings)


def test_a_root_given_through_a_symlink_still_matches(tmp_path: Path, root: Path) -> None:
    (tmp_path / "alias").symlink_to(root, target_is_directory=True)
    settings = Settings(home=tmp_path / "home", data_roots=str(tmp_path / "alias"))
    ref = parse_dataset_uri((tmp_path / "alias" / "d.csv").as_uri())
    assert list_dataset_files(ref, settings).total_size == len(CSV)


def test_a_sibling_with_the_root_as_prefix_is_outside(tmp_path: Path, settings: Settings) -> None:
    sibling = tmp_path / "allowed-not"
    sibling.mkdir()
    (sibling / "d.csv").write_text(CSV)
    with pytest.raises(DatasetOutsideRootsError):
        list_dataset_files(parse_dataset_uri((sibling / "d.csv").as_uri()), settings)


def test_by_default_the_artifact_root_and_the_cwd_are_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifacts, cwd, elsewhere = (tmp_path / n for n in ("art", "cwd", "elsewhere"))
    for directory in (artifacts, cwd, elsewhere):
        directory.mkdir()
        (directory / "d.csv").write_text(CSV)
    monkeypatch.chdir(cwd)
    settings = Settings(home=tmp_path / "home", artifact_uri=artifacts.as_uri())
    for allowed in (artifacts, cwd):
        list_dataset_files(parse_dataset_uri((allowed / "d.csv").as_uri()), settings)
    with pytest.raises(DatasetOutsideRootsError):
        list_dataset_files(parse_dataset_uri((elsewhere / "d.csv").as_uri()), settings)


def test_the_precheck_refuses_a_local_file_outside_the_roots(settings: Settings) -> None:
    spec = {
        "spec_version": 1, "name": "m", "dataset": "file:///etc/passwd",
        "dataset_format": "csv", "target": "label", "task": "classification",
        "framework": "sklearn",
    }  # fmt: skip
    assert os.path.exists("/etc/passwd")
    with pytest.raises(DatasetOutsideRootsError, match="/etc/passwd"):
        check_training_input(spec, settings=settings)
