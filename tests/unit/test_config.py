"""Settings read from the environment: the new security settings and their checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from rayline.config import Settings


def test_data_roots_split_on_pathsep_and_commas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    monkeypatch.setenv("RAYLINE_DATA_ROOTS", f"{a}{os.pathsep}{b}, {c}")
    assert Settings().data_root_paths() == (a, b, c)


def test_data_roots_must_be_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYLINE_DATA_ROOTS", "data")
    with pytest.raises(ValidationError, match="RAYLINE_DATA_ROOTS"):
        Settings()


def test_default_data_roots_are_the_file_artifact_root_and_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    art = tmp_path / "art"
    assert Settings(artifact_uri=art.as_uri()).data_root_paths() == (art, tmp_path)
    assert Settings(artifact_uri="s3://bucket/models").data_root_paths() == (tmp_path,)


def test_a_cwd_of_slash_is_no_default_data_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert Settings(artifact_uri="s3://bucket/models").data_root_paths() == ()
    assert Settings(data_roots="/").data_root_paths() == (Path("/"),)  # only when asked for
