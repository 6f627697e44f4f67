"""The serving base image the stack's deployments need, checked (and built) at ``up``.

In Docker mode (``RAYLINE_SERVING_MODE`` ``docker``, or ``auto``: the stack always
runs a Docker engine) every deployment builds its model image on the serving base
image, and nothing can be pulled here. ``up`` makes sure it is in the stack's
engine, so a first workflow run does not train for minutes and then fail on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayline.stack.config import Report
from rayline.stack.errors import StackError

__all__ = ["ensure_serving_base_image", "needs_base_image"]


def needs_base_image(env: Mapping[str, str]) -> bool:
    """True when the stack's deployments run as Docker containers."""
    return (env.get("RAYLINE_SERVING_MODE") or "auto") != "ray"


def ensure_serving_base_image(env: Mapping[str, str], report: Report, detail: Report) -> None:
    """Check the base image is in the stack's Docker engine; build it when it is Rayline's own.

    Args:
        env: the stack's process environment (``DOCKER_HOST``, serving settings).
        report: called with one line per step.
        detail: called with each line of a build (the progress display).

    Raises:
        StackError: no engine answers, a named base image is missing (it cannot be
            built here), or the build failed; the message says what to do.
    """
    if not needs_base_image(env):
        return
    import docker
    from docker.errors import DockerException

    from rayline.config import Settings
    from rayline.serving.base_image import build_base_image, resolve_base_image
    from rayline.serving.errors import ImageBuildError

    # The serving settings of the stack's processes are the caller's (inherited).
    settings = Settings()
    tag = resolve_base_image(settings)
    try:
        client = docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=3600)
        client.ping()
    except DockerException as err:
        raise StackError(f"no Docker engine answers at {env['DOCKER_HOST']}: {err}") from err
    try:
        if _has_image(client, tag):
            report(f"serving base image {tag}: in the engine")
            return
        if settings.serving_base_image:
            raise StackError(
                f"RAYLINE_SERVING_BASE_IMAGE={tag} is not in the stack's Docker engine "
                f"({env['DOCKER_HOST']}) and nothing can be pulled here: load it into that "
                "engine, unset it to build Rayline's own, or serve without Docker "
                "(RAYLINE_SERVING_MODE=ray)"
            )
        report(f"building the serving base image {tag} (once per machine, a few minutes)")
        try:
            build = build_base_image(settings, client, progress=detail)
        except ImageBuildError as err:
            raise StackError(
                f"{err}; or serve without Docker: RAYLINE_SERVING_MODE=ray before `up`"
            ) from err
        report(f"built {tag} in {build.seconds:.0f}s")
    finally:
        client.close()


def _has_image(client: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True
