"""Errors raised by cluster backends; each names the problem and the fix."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "InvalidHandleError",
    "PortRangeExhaustedError",
    "ProvisionError",
    "TeardownError",
    "UnknownBackendError",
    "UnsupportedRequestError",
]


class BackendError(Exception):
    """Base class of every error a cluster backend raises."""


class UnknownBackendError(BackendError, LookupError):
    """No backend is registered under the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown cluster backend {name!r}; known backends: {', '.join(sorted(known))}. "
            "Set RAYLINE_CLUSTER_BACKEND to one of them, or register a new backend in "
            "rayline/clusters/backends/__init__.py"
        )


class UnsupportedRequestError(BackendError, ValueError):
    """The backend cannot start a cluster of this shape at all."""


class ProvisionError(BackendError):
    """Starting the cluster's processes or resources failed."""


class TeardownError(BackendError):
    """Some of a cluster's processes or resources survived teardown."""


class InvalidHandleError(BackendError, ValueError):
    """A stored handle does not belong to this backend or cannot be read."""


class BackendUnavailableError(BackendError):
    """The cluster's control endpoints (dashboard, job API) did not answer."""


class PortRangeExhaustedError(ProvisionError):
    """No free block of ports is left in the configured range."""

    def __init__(self, needed: int, start: int, end: int) -> None:
        self.needed = needed
        super().__init__(
            f"no {needed} consecutive free ports left in {start}-{end}; terminate clusters "
            "you no longer need, or widen RAYLINE_LOCAL_PORT_RANGE_START/_END"
        )
