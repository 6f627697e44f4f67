"""Unit tests of private directories: made mode 700, foreign or shared ones refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rayline.private_dirs import UnsafeDirectoryError, ensure_private_dir, named_temp_dir

NOBODY = 65534


def test_a_new_directory_is_mode_700(tmp_path: Path) -> None:
    made = ensure_private_dir(tmp_path / "a" / "state")

    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_directory_others_may_write_is_refused_naming_the_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    with pytest.raises(UnsafeDirectoryError, match=r"writable by group or others.*777"):
        ensure_private_dir(shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory of another user needs root")
def test_a_directory_of_another_user_is_refused_naming_the_owner(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    os.chown(planted, NOBODY, NOBODY)

    with pytest.raises(UnsafeDirectoryError, match=f"belongs to uid {NOBODY}"):
        ensure_private_dir(planted)


def test_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")

    with pytest.raises(UnsafeDirectoryError, match="not a directory"):
        ensure_private_dir(tmp_path / "link")


def test_the_temp_dir_name_is_random_per_user_and_kept(tmp_path: Path) -> None:
    first = named_temp_dir(tmp_path / "home-a" / "ray-temp-base", prefix="rl-")
    again = named_temp_dir(tmp_path / "home-a" / "ray-temp-base", prefix="rl-")
    other = named_temp_dir(tmp_path / "home-b" / "ray-temp-base", prefix="rl-")

    assert first == again != other
    assert first.name.startswith("rl-") and len(first.name) == len("rl-") + 8
    assert stat.S_IMODE((tmp_path / "home-a" / "ray-temp-base").stat().st_mode) == 0o600
