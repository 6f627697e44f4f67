"""Cluster tokens: private files, fresh on every write, sent as a bearer header."""

from __future__ import annotations

import stat
from pathlib import Path

from rayline.clusters.ray_auth import auth_headers, read_token, remove_token, write_new_token


def test_a_token_file_is_mode_600_and_replaced_by_a_fresh_token(tmp_path: Path) -> None:
    path = tmp_path / "c1" / "ray-auth-token"
    first = write_new_token(path)
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_token(path) == first
    second = write_new_token(path)
    assert second != first and read_token(path) == second


def test_no_file_means_no_token_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "ray-auth-token"
    assert read_token(path) is None
    remove_token(path)  # nothing to remove: fine
    assert auth_headers(None) == {}
    assert auth_headers("abc") == {"Authorization": "Bearer abc"}
