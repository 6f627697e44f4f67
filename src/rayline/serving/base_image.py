"""The serving base image, built offline: no registry is reachable, nothing is pulled.

It is made of

1. a Debian root file system from ``debootstrap`` (only Debian's mirror is
   needed), cached as a tarball and imported with ``docker import``;
2. the wheels of :func:`~rayline.serving.requirements.serving_requirements`,
   downloaded on the host into a cached wheelhouse
   (:mod:`rayline.serving.wheelhouse`) and installed by
   ``docker build --network none``.

Its tag, ``rayline-serving-base:<rayline version>-<digest>``, changes whenever
the pinned packages or the recipe change, so an existing tag is reused as is.
Production can name another base (``RAYLINE_SERVING_BASE_IMAGE``, e.g. one
built ``FROM rayproject/ray:2.60.0`` with the model libraries added). Model
images are built on it by :mod:`rayline.serving.model_image`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rayline
from rayline.serving.docker_engine import LABEL_PREFIX
from rayline.serving.errors import ImageBuildError
from rayline.serving.image_build import (
    Progress,
    context_dir,
    docker_build,
    image_exists,
    link_all,
    quiet,
    run_command,
)
from rayline.serving.requirements import Pin, requirements_digest, serving_requirements
from rayline.serving.wheelhouse import ensure_wheels

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "BASE_APT_PACKAGES",
    "BASE_REPOSITORY",
    "BaseImagePlan",
    "BuildReport",
    "base_image_plan",
    "build_base_image",
    "ensure_rootfs",
    "resolve_base_image",
]

BASE_REPOSITORY = "rayline-serving-base"
ROOTFS_REPOSITORY = "rayline-rootfs"
#: Debian packages of the root file system: Python 3.11, venv, TLS roots,
#: OpenMP for xgboost/scikit-learn, ps for Ray's process handling.
BASE_APT_PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "libgomp1",
    "procps",
)
# Bump when the recipe changes in a way the digest of the Dockerfile below cannot see.
_RECIPE = "1"
_VENV = "/opt/venv"
_SMOKE_IMPORTS = "import ray.serve, fastapi, sklearn, xgboost, pandas, pyarrow, prometheus_client"

_BASE_DOCKERFILE = f"""\
# Built by `rayline images build-base` with --network none: wheels come from the context.
FROM {{rootfs}} AS wheels
COPY requirements.txt /tmp/requirements.txt
COPY wheels /tmp/wheels
RUN python3 -m venv {_VENV} \\
 && {_VENV}/bin/pip install --no-index --no-deps --no-compile --disable-pip-version-check \\
      --find-links /tmp/wheels -r /tmp/requirements.txt \\
 && {_VENV}/bin/python -c "{_SMOKE_IMPORTS}"

# Only the installed environment goes into the final image, not the wheels.
FROM {{rootfs}}
COPY --from=wheels {_VENV} {_VENV}
ENV VIRTUAL_ENV={_VENV} PATH={_VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
"""


@dataclass(frozen=True)
class BaseImagePlan:
    """Everything that determines the base image, and the names derived from it."""

    suite: str
    mirror: str
    apt_packages: tuple[str, ...]
    pins: tuple[Pin, ...]
    digest: str

    @property
    def tag(self) -> str:
        """``rayline-serving-base:<rayline version>-<digest>``."""
        return f"{BASE_REPOSITORY}:{rayline.__version__}-{self.digest[:12]}"

    @property
    def rootfs_digest(self) -> str:
        """Identifies the root file system alone (suite and Debian packages)."""
        return requirements_digest([], self.suite, *self.apt_packages)[:12]

    @property
    def rootfs_tag(self) -> str:
        """The imported root file system, e.g. ``rayline-rootfs:bookworm-0a1b2c3d4e5f``."""
        return f"{ROOTFS_REPOSITORY}:{self.suite}-{self.rootfs_digest}"


@dataclass
class BuildReport:
    """What a build did and how long each step took (seconds)."""

    tag: str
    reused: bool
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Total time of the build."""
        return sum(self.steps.values())


def base_image_plan(settings: Settings) -> BaseImagePlan:
    """Work out the base image this Rayline version and environment need."""
    pins = tuple(serving_requirements())
    digest = requirements_digest(
        list(pins),
        _RECIPE,
        _BASE_DOCKERFILE,
        settings.serving_debian_suite,
        *BASE_APT_PACKAGES,
    )
    return BaseImagePlan(
        suite=settings.serving_debian_suite,
        mirror=settings.serving_debian_mirror,
        apt_packages=BASE_APT_PACKAGES,
        pins=pins,
        digest=digest,
    )


def resolve_base_image(settings: Settings) -> str:
    """The base image of model images: the setting, else the one we build."""
    return settings.serving_base_image or base_image_plan(settings).tag


def build_base_image(
    settings: Settings,
    client: Any,
    *,
    force: bool = False,
    progress: Progress = quiet,
) -> BuildReport:
    """Build the serving base image offline, reusing every cached piece.

    Args:
        settings: For the cache directory, Debian suite and mirror.
        client: A ``docker.DockerClient``.
        force: Rebuild even when the tag exists (the caches are still used).
        progress: Called with one line per step and build output line.

    Returns:
        The tag and the time spent in each step.

    Raises:
        ImageBuildError: debootstrap, pip or the Docker build failed.
    """
    plan = base_image_plan(settings)
    report = BuildReport(tag=plan.tag, reused=False)
    if not force and image_exists(client, plan.tag):
        progress(f"{plan.tag} exists; reusing it")
        report.reused = True
        return report
    cache = settings.cache_dir / "serving"
    with _timed(report, "rootfs"):
        tarball = ensure_rootfs(plan, cache, progress)
    with _timed(report, "import"):
        _ensure_imported(client, tarball, plan.rootfs_tag, progress)
    with _timed(report, "wheels"):
        wheels = ensure_wheels(plan.pins, cache / "wheelhouse", progress)
    with _timed(report, "build"), context_dir(cache) as ctx:
        link_all(wheels, ctx / "wheels")
        (ctx / "requirements.txt").write_text("".join(f"{p}\n" for p in plan.pins))
        (ctx / "Dockerfile").write_text(_BASE_DOCKERFILE.format(rootfs=plan.rootfs_tag))
        labels = {
            f"{LABEL_PREFIX}kind": "serving-base",
            f"{LABEL_PREFIX}rayline-version": rayline.__version__,
            f"{LABEL_PREFIX}requirements-sha256": plan.digest,
        }
        docker_build(client, ctx, plan.tag, labels, progress)
    progress(f"built {plan.tag} in {report.seconds:.0f}s")
    return report


def ensure_rootfs(plan: BaseImagePlan, cache: Path, progress: Progress = quiet) -> Path:
    """The cached root file system tarball, made with debootstrap when missing.

    Raises:
        ImageBuildError: debootstrap is missing, we are not root, or it failed.
    """
    tarball = cache / f"rootfs-{plan.suite}-{plan.rootfs_digest}.tar"
    if tarball.is_file():
        progress(f"root file system: cached {tarball}")
        return tarball
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None
    )
    if debootstrap is None:
        raise ImageBuildError(
            "debootstrap is not installed; install it (`apt-get install debootstrap`) or set "
            "RAYLINE_SERVING_BASE_IMAGE to an image that already has the serving packages"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap must run as root; run `rayline images build-base` as root"
        )
    cache.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
    try:
        progress(f"root file system: debootstrap {plan.suite} from {plan.mirror} (a few minutes)")
        run_command(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(plan.apt_packages)}",
                plan.suite,
                str(root),
                plan.mirror,
            ],
            what="debootstrap",
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".tar.partial")
        run_command(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], what="tar"
        )
        partial.replace(tarball)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


def _ensure_imported(client: Any, tarball: Path, tag: str, progress: Progress) -> None:
    if image_exists(client, tag):
        progress(f"root file system image: {tag} exists")
        return
    repository, _, version = tag.partition(":")
    progress(f"root file system image: docker import {tarball.name} as {tag}")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    if not image_exists(client, tag):
        raise ImageBuildError(f"docker import of {tarball} did not produce {tag}")


@contextmanager
def _timed(report: BuildReport, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.steps[step] = report.steps.get(step, 0.0) + time.monotonic() - started
