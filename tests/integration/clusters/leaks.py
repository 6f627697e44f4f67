"""Find Ray processes started by the local backend, to prove nothing is left behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rayline.clusters.backends.local import LocalBackend
from rayline.clusters.backends.processes import find_marked, read_cmdline
from rayline.clusters.backends.ray_nodes import TEMP_DIR_ENV
from rayline.config import Settings


def temp_base_env() -> dict[str, str]:
    """``RAYLINE_RAY_TEMP_BASE`` of this user's default base, for managers with a home of
    their own: the helpers below then find those managers' clusters."""
    return {"RAYLINE_RAY_TEMP_BASE": str(LocalBackend(Settings()).temp_dir_for("x").parent)}


def temp_dirs_of(cluster_id: str) -> list[Path]:
    """The cluster's possible Ray temp dirs.

    By default each manager home names its own private temp base
    (``<system tmp>/rl-<random>``), and a test's managers have homes of their
    own: look under every such base, and under this process's settings' one.
    """
    mine = LocalBackend(Settings()).temp_dir_for(cluster_id)
    leaf = mine.name  # a hash of the cluster id, the same under every base
    bases = Path(tempfile.gettempdir()).glob("rl-*")
    return [mine, *(base / leaf for base in bases if base / leaf != mine)]


def ray_pids_of(cluster_id: str) -> list[int]:
    """Pids of live processes that belong to one cluster."""
    pids: set[int] = set()
    for temp_dir in temp_dirs_of(cluster_id):
        pids.update(r.pid for r in find_marked(temp_dir, TEMP_DIR_ENV))
    return sorted(pids)


def head_pgid(cluster_id: str) -> int:
    """Process group of the cluster's `ray start --head` process."""
    for pid in ray_pids_of(cluster_id):
        args = read_cmdline(pid)
        if "start" in args and "--head" in args:
            return os.getpgid(pid)
    raise AssertionError(f"no head process found for {cluster_id}")


def assert_no_ray_left(*cluster_ids: str) -> None:
    """Fail when a process or the temp dir of one of these clusters is still there."""
    for cluster_id in cluster_ids:
        assert not ray_pids_of(cluster_id), f"Ray processes of {cluster_id} left behind"
        for temp_dir in temp_dirs_of(cluster_id):
            assert not temp_dir.exists(), f"Ray temp dir {temp_dir} left behind"
