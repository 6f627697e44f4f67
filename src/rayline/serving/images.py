"""Serving images, built offline: the base image and one image per model version.

No registry is reachable, so nothing is pulled. The base image is made of

1. a Debian root file system from ``debootstrap`` (only Debian's mirror is
   needed), cached as a tarball and imported with ``docker import``;
2. the wheels of :func:`~rayline.serving.requirements.serving_requirements`,
   downloaded on the host with ``pip download`` into a cached wheelhouse and
   installed by ``docker build --network none``.

Its tag, ``rayline-serving-base:<rayline version>-<digest>``, changes whenever
the pinned packages or the recipe change, so an existing tag is reused as is.
Production can name another base (``RAYLINE_SERVING_BASE_IMAGE``, e.g. one
built ``FROM rayproject/ray:2.60.0`` with the model libraries added).

A model image ``rayline-model-NAME:VERSION`` adds Rayline's code, the verified
model files and the serving config on top, labelled with the model, version,
manifest sha256 and Rayline version; it is reused while those labels, the
code and the base still match.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name, parse_wheel_filename

import rayline
from rayline.serving.docker_engine import LABEL_PREFIX
from rayline.serving.errors import ImageBuildError
from rayline.serving.requirements import Pin, requirements_digest, serving_requirements

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "BASE_APT_PACKAGES",
    "BASE_REPOSITORY",
    "BaseImagePlan",
    "BuildReport",
    "ModelImage",
    "base_image_plan",
    "build_base_image",
    "build_model_image",
    "code_digest",
    "model_image_tag",
    "resolve_base_image",
]

log = logging.getLogger(__name__)

BASE_REPOSITORY = "rayline-serving-base"
ROOTFS_REPOSITORY = "rayline-rootfs"
MODEL_REPOSITORY_PREFIX = "rayline-model-"
#: Debian packages of the root file system: Python 3.11, venv, TLS roots,
#: OpenMP for xgboost/scikit-learn, ps for Ray's process handling.
BASE_APT_PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "libgomp1",
    "procps",
)
# Bump when the Dockerfiles below change in a way the digests cannot see.
_RECIPE = "1"
_VENV = "/opt/venv"
_APP_ROOT = "/opt/rayline"
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

_MODEL_DOCKERFILE = f"""\
FROM {{base}}
COPY rayline {_APP_ROOT}/lib/rayline
COPY model {_APP_ROOT}/model
COPY serving.json {_APP_ROOT}/serving.json
ENV PYTHONPATH={_APP_ROOT}/lib PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
# Fail the build, not the first start, when the base lacks something we import.
RUN python -c "import rayline.serving.container, rayline.serving.app, rayline.models"
CMD ["python", "-m", "rayline.serving.container", "--config", "{_APP_ROOT}/serving.json"]
"""

#: Where a model image keeps its model files and serving config.
MODEL_DIR_IN_IMAGE = f"{_APP_ROOT}/model"
CONFIG_IN_IMAGE = f"{_APP_ROOT}/serving.json"

Progress = Callable[[str], None]

# Bookworm has glibc 2.36: every manylinux tag up to that one fits. pip does not
# widen one --platform to the older tags by itself, so all are listed.
_MANYLINUX_TAGS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


def _quiet(_: str) -> None:
    return None


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


@dataclass(frozen=True)
class ModelImage:
    """A model image: its tag, id, and whether an existing one was reused."""

    tag: str
    id: str
    reused: bool
    seconds: float


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


# ---------------------------------------------------------------- base image


def build_base_image(
    settings: Settings,
    client: Any,
    *,
    force: bool = False,
    progress: Progress = _quiet,
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
    if not force and _image_exists(client, plan.tag):
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
    with _timed(report, "build"), _context_dir(cache) as ctx:
        _link_all(wheels, ctx / "wheels")
        (ctx / "requirements.txt").write_text("".join(f"{p}\n" for p in plan.pins))
        (ctx / "Dockerfile").write_text(_BASE_DOCKERFILE.format(rootfs=plan.rootfs_tag))
        labels = {
            f"{LABEL_PREFIX}kind": "serving-base",
            f"{LABEL_PREFIX}rayline-version": rayline.__version__,
            f"{LABEL_PREFIX}requirements-sha256": plan.digest,
        }
        _docker_build(client, ctx, plan.tag, labels, progress)
    progress(f"built {plan.tag} in {report.seconds:.0f}s")
    return report


def ensure_rootfs(plan: BaseImagePlan, cache: Path, progress: Progress = _quiet) -> Path:
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
        _run(
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
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], what="tar")
        partial.replace(tarball)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


def _ensure_imported(client: Any, tarball: Path, tag: str, progress: Progress) -> None:
    if _image_exists(client, tag):
        progress(f"root file system image: {tag} exists")
        return
    repository, _, version = tag.partition(":")
    progress(f"root file system image: docker import {tarball.name} as {tag}")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    if not _image_exists(client, tag):
        raise ImageBuildError(f"docker import of {tarball} did not produce {tag}")


def ensure_wheels(pins: Iterable[Pin], wheelhouse: Path, progress: Progress = _quiet) -> list[Path]:
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
        _run(
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


# ---------------------------------------------------------------- model images


def model_image_tag(name: str, version: int) -> str:
    """``rayline-model-NAME:VERSION`` (Docker wants the name in lower case)."""
    repository = re.sub(r"[^a-z0-9._-]", "-", name.lower())
    return f"{MODEL_REPOSITORY_PREFIX}{repository}:{version}"


def code_digest() -> str:
    """sha256 over Rayline's own source files, as copied into model images."""
    root = Path(rayline.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(_code_files(root)):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _code_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def build_model_image(
    client: Any,
    *,
    base: str,
    model_dir: Path,
    config_json: str,
    name: str,
    version: int,
    sha256: str,
    labels: dict[str, str] | None = None,
    progress: Progress = _quiet,
) -> ModelImage:
    """Build ``rayline-model-NAME:VERSION``, or reuse it when nothing changed.

    Args:
        client: A ``docker.DockerClient``.
        base: The base image (must exist locally: nothing is pulled).
        model_dir: The fetched, verified model version (with its manifest).
        config_json: The serving config written to ``/opt/rayline/serving.json``.
        name: Model name.
        version: Registry version.
        sha256: The manifest sha256 registered for the version.
        labels: Extra labels (e.g. for tests to find what they made).
        progress: Called with build output lines.

    Raises:
        ImageBuildError: The base image is missing or the build failed.
    """
    started = time.monotonic()
    from docker.errors import ImageNotFound

    try:
        base_id = client.images.get(base).id
    except ImageNotFound:
        raise ImageBuildError(
            f"the serving base image {base!r} is not in the local Docker engine and nothing "
            "can be pulled; build it with `rayline images build-base` or set "
            "RAYLINE_SERVING_BASE_IMAGE to an image that exists"
        ) from None
    tag = model_image_tag(name, version)
    # Extra labels first: ours win, so an image is reused only for what it holds.
    wanted = {
        **(labels or {}),
        f"{LABEL_PREFIX}kind": "model",
        f"{LABEL_PREFIX}model": name,
        f"{LABEL_PREFIX}version": str(version),
        f"{LABEL_PREFIX}sha256": sha256,
        f"{LABEL_PREFIX}rayline-version": rayline.__version__,
        f"{LABEL_PREFIX}code-sha256": code_digest(),
        f"{LABEL_PREFIX}config-sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        f"{LABEL_PREFIX}base-id": base_id,
    }
    existing = _get_image(client, tag)
    if existing is not None and _labels_match(existing.labels or {}, wanted):
        progress(f"{tag} exists with sha256 {sha256[:12]}; reusing it")
        return ModelImage(tag, existing.id, True, time.monotonic() - started)
    with _context_dir(Path(tempfile.gettempdir())) as ctx:
        shutil.copytree(model_dir, ctx / "model")
        root = Path(rayline.__file__).parent
        shutil.copytree(
            root, ctx / "rayline", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (ctx / "serving.json").write_text(config_json)
        (ctx / "Dockerfile").write_text(_MODEL_DOCKERFILE.format(base=base))
        image_id = _docker_build(client, ctx, tag, wanted, progress)
    return ModelImage(tag, image_id, False, time.monotonic() - started)


def _labels_match(have: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(have.get(k) == v for k, v in wanted.items() if k.startswith(LABEL_PREFIX))


# ---------------------------------------------------------------- plumbing


def _docker_build(
    client: Any, ctx: Path, tag: str, labels: dict[str, str], progress: Progress
) -> str:
    """``docker build --network none``; returns the image id."""
    from docker.errors import APIError

    progress(f"docker build --network none -t {tag}")
    tail: list[str] = []
    layers: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(ctx),
            tag=tag,
            labels=labels,
            network_mode="none",
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "error" in chunk:
                _remove_layers(client, layers)
                output = "\n".join(tail[-20:])
                raise ImageBuildError(f"docker build of {tag} failed: {chunk['error']}\n{output}")
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                _note_layer(line, tail, layers)
                tail.append(line)
                progress(line)
    except APIError as err:
        _remove_layers(client, layers)
        raise ImageBuildError(f"the Docker engine refused to build {tag}: {err}") from err
    image_id: str = client.images.get(tag).id
    return image_id


def _note_layer(line: str, tail: list[str], layers: list[str]) -> None:
    """Remember the images a build step made (not the ``FROM`` image, which is not ours)."""
    match = re.fullmatch(r"\s*---> ([0-9a-f]{12})", line)
    if match is None:
        return
    previous = next((t for t in reversed(tail) if t.startswith("Step ")), "")
    if " : FROM " not in previous:
        layers.append(match.group(1))


def _remove_layers(client: Any, layers: list[str]) -> None:
    """Remove the untagged layers of a failed build (newest first); keep anything in use."""
    from docker.errors import APIError

    for layer in reversed(layers):
        try:
            if not client.images.get(layer).tags:
                client.images.remove(layer, noprune=True)
        except APIError:
            continue  # used by another image or container: not ours to remove


def _image_exists(client: Any, tag: str) -> bool:
    return _get_image(client, tag) is not None


def _get_image(client: Any, tag: str) -> Any:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


@contextmanager
def _context_dir(parent: Path) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix="build-", dir=parent))
    try:
        yield ctx
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def _link_all(files: list[Path], dest: Path) -> None:
    """Hard-link (or copy, across file systems) files into the build context."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)


@contextmanager
def _timed(report: BuildReport, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.steps[step] = report.steps.get(step, 0.0) + time.monotonic() - started


def _run(command: list[str], *, what: str) -> None:
    log.info("running %s", " ".join(command[:6]))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise ImageBuildError(f"{what} failed with exit status {result.returncode}:\n{output}")
