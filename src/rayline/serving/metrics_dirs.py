"""The directory each deployment's replicas keep their multi-process metrics in.

Serve replicas are separate processes; prometheus-client sums their values from
memory-mapped files in one directory (see :mod:`rayline.serving.metrics`). The
directory is made when a deployment starts and removed when it stops, by
whichever process stops it: the name carries the deployment id, so a later
deploy job or ``rayline deployments delete`` finds it without being told.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["METRICS_DIR_PREFIX", "new_metrics_dir", "remove_metrics_dirs"]

log = logging.getLogger(__name__)

METRICS_DIR_PREFIX = "rayline-metrics-"


def new_metrics_dir(deployment_id: str) -> str:
    """Create the metrics directory of one start of ``deployment_id``.

    Mode 700 with a random suffix (``mkdtemp``): another user of the host can
    neither create it first nor write metric files into it.
    """
    return tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{deployment_id}-")


def remove_metrics_dirs(deployment_id: str) -> int:
    """Remove every metrics directory of ``deployment_id`` this user made; return how many.

    Only real directories owned by the current user are removed (never a link
    someone else planted), and nothing of any other deployment.
    """
    prefix = f"{METRICS_DIR_PREFIX}{deployment_id}-"
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        suffix = path.name[len(prefix) :]
        if "-" in suffix or not _own_directory(path):
            continue  # another deployment's id continues here, or not ours
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        log.debug("removed %d metrics directories of %s", removed, deployment_id)
    return removed


def _own_directory(path: Path) -> bool:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    return path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid()
