"""The exact Python packages a serving image needs, pinned to what is installed here.

The environment is synced from ``uv.lock``, so the versions installed on this
host *are* the locked ones. Walking the installed metadata from a few roots
(Ray Serve and the model libraries) gives the closed set of pins for the
image: nothing is resolved again, nothing floats. GPU-only libraries that CPU
serving never loads (xgboost's NCCL, ~300 MB) are left out.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rayline.serving.errors import ImageBuildError

__all__ = [
    "SERVING_ROOTS",
    "TARGET_ENVIRONMENT",
    "Pin",
    "requirements_digest",
    "serving_requirements",
]

#: What the container imports: Ray Serve, the model libraries, Rayline's own needs.
SERVING_ROOTS: tuple[str, ...] = (
    "ray[serve]",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "xgboost",
    "pydantic",
    "pydantic-settings",
    "prometheus-client",
    "pyyaml",
    "httpx",
)
#: Distributions never put in a CPU serving image (canonical-name prefixes).
EXCLUDED_PREFIXES: tuple[str, ...] = ("nvidia-",)

#: Marker environment of the image: Debian bookworm, CPython 3.11, x86_64.
TARGET_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@dataclass(frozen=True, order=True)
class Pin:
    """One distribution at one exact version."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def _applies(marker: Marker | None, extra: str) -> bool:
    if marker is None:
        return True
    return bool(marker.evaluate({**TARGET_ENVIRONMENT, "extra": extra}))


def serving_requirements(roots: tuple[str, ...] = SERVING_ROOTS) -> list[Pin]:
    """Return the closed, sorted set of pins the serving image installs.

    Raises:
        ImageBuildError: A needed distribution is not installed here (run ``uv sync``).
    """
    pins: dict[str, Pin] = {}
    done: set[tuple[str, str]] = set()
    queue: deque[Requirement] = deque(Requirement(r) for r in roots)
    while queue:
        req = queue.popleft()
        name = canonicalize_name(req.name)
        if name.startswith(EXCLUDED_PREFIXES):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError as err:
            raise ImageBuildError(
                f"{req.name} is needed in the serving image but not installed here; "
                "run `uv sync --frozen` so the pins come from uv.lock"
            ) from err
        pins[name] = Pin(name, dist.version)
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for line in dist.requires or []:
                dep = Requirement(line)
                if _applies(dep.marker, extra):
                    queue.append(dep)
    return sorted(pins.values())


def requirements_digest(pins: list[Pin], *extra: str) -> str:
    """sha256 over the pins and any other inputs that shape the image."""
    digest = hashlib.sha256()
    for line in [*map(str, sorted(pins)), *extra]:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()
