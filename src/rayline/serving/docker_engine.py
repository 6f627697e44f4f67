"""The Docker engine: connect once, with an error that says how to get one.

The ``docker`` SDK reads ``DOCKER_HOST`` like the CLI does; ``deploy/services.sh
up docker`` starts an engine and writes that variable into ``services.env``.
"""

from __future__ import annotations

import os
from typing import Any

from rayline.serving.errors import DockerUnavailableError

__all__ = ["LABEL_PREFIX", "docker_client", "engine_answers"]

#: Every container and image Rayline creates carries labels under this prefix.
LABEL_PREFIX = "rayline."


def docker_client(timeout: float = 120) -> Any:
    """Return a connected ``docker.DockerClient``.

    Raises:
        DockerUnavailableError: No engine answers at ``DOCKER_HOST``.
    """
    import docker
    from docker.errors import DockerException

    where = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except DockerException as err:
        raise DockerUnavailableError(
            f"no Docker engine answers at {where} ({type(err).__name__}); start one "
            "(`deploy/services.sh up docker`, then source services.env) or serve without "
            "Docker with RAYLINE_SERVING_MODE=ray"
        ) from err
    return client


def engine_answers() -> bool:
    """True when a Docker engine answers (used to pick the serving mode)."""
    try:
        docker_client(timeout=5).close()
    except DockerUnavailableError:
        return False
    return True
