"""The replicas' metrics directory: private and unguessable, never a shared /tmp path."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from rayline.serving.app import metrics_dir


def test_each_deployment_gets_a_new_private_directory() -> None:
    first, second = Path(metrics_dir("dp-1")), Path(metrics_dir("dp-1"))
    try:
        assert first != second  # a random name: nobody can create it first
        assert first.parent == Path(tempfile.gettempdir())
        assert stat.S_IMODE(first.stat().st_mode) == 0o700
    finally:
        first.rmdir()
        second.rmdir()
