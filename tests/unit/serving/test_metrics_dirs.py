"""The replicas' metrics directories: private, unguessable, removed per deployment."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from rayline.serving.metrics_dirs import new_metrics_dir, remove_metrics_dirs


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_each_start_gets_a_new_private_directory(tmp_path: Path) -> None:
    first, second = Path(new_metrics_dir("dp-1")), Path(new_metrics_dir("dp-1"))
    assert first != second  # a random name: nobody can create it first
    assert first.parent == tmp_path
    assert first.name.startswith("rayline-metrics-dp-1-")
    assert stat.S_IMODE(first.stat().st_mode) == 0o700


def test_removing_takes_every_directory_of_that_deployment_only(tmp_path: Path) -> None:
    mine = [Path(new_metrics_dir("dp-1")) for _ in range(2)]
    (mine[0] / "counter_1234.db").write_bytes(b"\0" * 16)
    other = Path(new_metrics_dir("dp-12"))  # an id that starts like the first one
    unrelated = tmp_path / "rayline-metrics-dp-1-planted"
    unrelated.symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    assert remove_metrics_dirs("dp-1") == 2

    assert not any(path.exists() for path in mine)
    assert other.is_dir()
    assert os.path.islink(unrelated)  # a link is never followed or removed
    assert remove_metrics_dirs("dp-1") == 0
