"""The wheels of the serving base image, downloaded on the host into a cache.

The image is built with ``--network none``, so pip inside it installs from
these files only. The image runs CPython 3.11 on Debian bookworm; the wheels
are chosen for that platform, not the host's.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from rayline.serving.errors import ImageBuildError
from rayline.serving.image_build import Progress, quiet, run_command
from rayline.serving.requirements import Pin

__all__ = ["ensure_wheels"]

# Bookworm has glibc 2.36: every manylinux tag up to that one fits. pip does not
# widen one --platform to the older tags by itself, so all are listed.
_MANYLINUX_TAGS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


def ensure_wheels(pins: Iterable[Pin], wheelhouse: Path, progress: Progress = quiet) -> list[Path]:
    """The wheel file of every pin, downloading the missing ones with pip.

    Raises:
        ImageBuildError: pip is not available or a pin has no wheel for the image.
    """
    wanted = list(pins)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    have = _wheels_in(wheelhouse)
    missing = [p for p in wanted if (p.name, p.version) not in have]
    if missing:
        progress(f"wheels: downloading {len(missing)} of {len(wanted)} into {wheelhouse}")
        run_command(
            [
                *_pip_command(),
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--python-version=3.11",
                "--implementation=cp",
                "--abi=cp311",
                *(f"--platform={tag}" for tag in _MANYLINUX_TAGS),
                f"--dest={wheelhouse}",
                *map(str, missing),
            ],
            what="pip download",
        )
        have = _wheels_in(wheelhouse)
    else:
        progress(f"wheels: all {len(wanted)} cached in {wheelhouse}")
    absent = [str(p) for p in wanted if (p.name, p.version) not in have]
    if absent:
        raise ImageBuildError(f"no wheel was downloaded for {', '.join(absent)}")
    return [have[(p.name, p.version)] for p in wanted]


def _wheels_in(directory: Path) -> dict[tuple[str, str], Path]:
    found: dict[tuple[str, str], Path] = {}
    for path in directory.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        found[(canonicalize_name(name), str(version))] = path
    return found


def _pip_command() -> list[str]:
    """pip of this interpreter, else uv's ``uvx pip``, else the system ``python3 -m pip``."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    uvx = shutil.which("uvx")
    if uvx:
        return [uvx, "--from", "pip", "pip"]
    python3 = shutil.which("python3")
    if (
        python3
        and subprocess.run([python3, "-m", "pip", "--version"], capture_output=True).returncode == 0
    ):
        return [python3, "-m", "pip"]
    raise ImageBuildError(
        "pip is needed to download wheels but none was found; install uv or pip "
        "(`python3 -m pip install uv`)"
    )
