"""Helpers for the S3 store tests: drive deploy/services.sh, make big files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICES_SH = REPO_ROOT / "deploy" / "services.sh"
MIB = 1024 * 1024


def services(action: str, name: str = "s3") -> None:
    """Run ``deploy/services.sh ACTION NAME`` (it waits until a started service answers)."""
    subprocess.run(["bash", str(SERVICES_SH), action, name], check=True, timeout=180)


def write_random_file(path: Path, size: int) -> Path:
    """Write ``size`` bytes of random data to ``path`` (16 MiB random blocks)."""
    with path.open("wb") as fh:
        remaining = size
        while remaining:
            block = os.urandom(min(16 * MIB, remaining))
            fh.write(block)
            remaining -= len(block)
    return path
