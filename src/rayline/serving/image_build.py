"""Docker build plumbing shared by the base image and the model images.

Every build runs with ``--network none`` and never pulls; a failed build removes
the untagged layers it made. Helpers here take a ``docker.DockerClient``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rayline.serving.errors import ImageBuildError

__all__ = [
    "Progress",
    "context_dir",
    "docker_build",
    "get_image",
    "image_exists",
    "link_all",
    "quiet",
    "run_command",
]

log = logging.getLogger(__name__)

#: Called with one line per build step or build output line.
Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A :data:`Progress` that says nothing."""
    return None


def docker_build(
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


def image_exists(client: Any, tag: str) -> bool:
    """Whether the local engine has ``tag``."""
    return get_image(client, tag) is not None


def get_image(client: Any, tag: str) -> Any:
    """The local image ``tag``, or None."""
    from docker.errors import ImageNotFound

    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


@contextmanager
def context_dir(parent: Path) -> Iterator[Path]:
    """A fresh build context directory under ``parent``, removed afterwards."""
    parent.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix="build-", dir=parent))
    try:
        yield ctx
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def link_all(files: list[Path], dest: Path) -> None:
    """Hard-link (or copy, across file systems) files into the build context."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)


def run_command(command: list[str], *, what: str) -> None:
    """Run a build tool; raise ImageBuildError with its output when it fails."""
    log.info("running %s", " ".join(command[:6]))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise ImageBuildError(f"{what} failed with exit status {result.returncode}:\n{output}")
