"""Domain errors of serving: each names the problem and how to fix it."""

from __future__ import annotations

__all__ = [
    "DeploymentFailedError",
    "DeploymentNotFoundError",
    "DockerUnavailableError",
    "ImageBuildError",
    "InvalidModelRefError",
    "InvalidRequestError",
    "NoEndpointError",
    "PortInUseError",
    "PredictionRejectedError",
    "ServingError",
]


class ServingError(Exception):
    """Base class of every serving error."""


class InvalidModelRefError(ServingError, ValueError):
    """A model reference is not ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

    def __init__(self, ref: str, why: str) -> None:
        self.ref = ref
        super().__init__(
            f"{ref!r} is not a model reference ({why}); write NAME, NAME:VERSION (e.g. iris:3) "
            "or NAME@ALIAS (e.g. iris@champion)"
        )


class InvalidRequestError(ServingError, ValueError):
    """A prediction request does not match the model's input signature (HTTP 4xx)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        self.status = status
        super().__init__(message)


class PortInUseError(ServingError):
    """The port asked for is already taken on the serving host."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"port {port} on {host} is already in use by another program; pick a free one "
            "with --port, or leave --port out to get one chosen for you"
        )


class DockerUnavailableError(ServingError):
    """No Docker engine answers, or it refused an operation."""


class ImageBuildError(ServingError):
    """Building the serving base image or a model image failed."""


class DeploymentFailedError(ServingError):
    """A new deployment did not become healthy; whatever served before still serves."""


class DeploymentNotFoundError(ServingError, LookupError):
    """No deployment matches the id or model name given."""

    def __init__(self, what: str) -> None:
        super().__init__(f"no deployment {what}; list them with `rayline deployments list --all`")


class NoEndpointError(ServingError, LookupError):
    """Service discovery knows no live endpoint of the model."""

    def __init__(self, model: str, detail: str = "") -> None:
        self.model = model
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"no live endpoint serves model {model!r}{extra}; deploy it with "
            f"`rayline deploy {model}` or check `rayline deployments list`"
        )


class PredictionRejectedError(ServingError):
    """The model server refused a prediction request (HTTP 4xx)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"the model server refused the request (HTTP {status}): {detail}")
