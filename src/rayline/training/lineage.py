"""Where a model came from: the code version that trained it."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import rayline

__all__ = ["code_version"]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``rayline <version>``, plus ``+g<commit>`` when running from a git checkout.

    The commit is that of the checkout holding the imported ``rayline``
    package, i.e. the code that actually runs (on the cluster, for a job).
    """
    version = f"rayline {rayline.__version__}"
    git = shutil.which("git")
    if git is None:
        return version
    try:
        done = subprocess.run(
            [git, "-C", str(Path(rayline.__file__).parent), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return version
    commit = done.stdout.strip()
    return f"{version}+g{commit}" if done.returncode == 0 and commit else version
