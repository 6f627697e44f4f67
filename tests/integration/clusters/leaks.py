"""Find Ray processes started by the local backend, to prove nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path

from rayline.clusters.backends.local import LocalBackend
from rayline.clusters.backends.processes import find_marked, read_cmdline
from rayline.clusters.backends.ray_nodes import TEMP_DIR_ENV
from rayline.config import Settings

_PROC = Path("/proc")


def _temp_base() -> Path:
    return Path(Settings().ray_temp_base)


def ray_pids_of(cluster_id: str) -> list[int]:
    """Pids of live processes that belong to one cluster."""
    temp_dir = LocalBackend(Settings()).temp_dir_for(cluster_id)
    return [r.pid for r in find_marked(temp_dir, TEMP_DIR_ENV)]


def head_pgid(cluster_id: str) -> int:
    """Process group of the cluster's `ray start --head` process."""
    for pid in ray_pids_of(cluster_id):
        args = read_cmdline(pid)
        if "start" in args and "--head" in args:
            return os.getpgid(pid)
    raise AssertionError(f"no head process found for {cluster_id}")


def our_ray_pids() -> list[int]:
    """Pids of every live process marked with a temp dir under our Ray temp base."""
    prefix = f"{TEMP_DIR_ENV}={_temp_base()}/".encode()
    pids = []
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            environ = (_PROC / name / "environ").read_bytes()
            stat = (_PROC / name / "stat").read_text()
        except OSError:
            continue
        zombie = stat[stat.rindex(")") + 2 :].startswith("Z")
        if not zombie and any(e.startswith(prefix) for e in environ.split(b"\0")):
            pids.append(int(name))
    return pids


def assert_no_ray_left() -> None:
    """Fail when a Ray process or a cluster temp dir of ours is still there."""
    leftovers = our_ray_pids()
    assert not leftovers, f"Ray processes left behind: {leftovers}"
    base = _temp_base()
    dirs = [p for p in base.iterdir()] if base.is_dir() else []
    assert not dirs, f"Ray temp dirs left behind: {dirs}"
