"""Cluster backends: one interface (`ClusterBackend`), one registry (`BACKENDS`).

Example:
    >>> backend = get_backend("local", get_settings())  # doctest: +SKIP
    >>> handle = backend.provision(request)  # doctest: +SKIP
    >>> backend.probe(handle, expected_nodes=request.node_count).ready  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rayline.clusters.backends.base import (
    Activity,
    Capacity,
    ClusterBackend,
    ClusterHandle,
    ClusterRequest,
    HealthReport,
    NodeResources,
    NodeStatus,
)
from rayline.clusters.backends.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidHandleError,
    PortRangeExhaustedError,
    ProvisionError,
    TeardownError,
    UnknownBackendError,
    UnsupportedRequestError,
)
from rayline.clusters.backends.local import LocalBackend

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "BACKENDS",
    "Activity",
    "BackendError",
    "BackendUnavailableError",
    "Capacity",
    "ClusterBackend",
    "ClusterHandle",
    "ClusterRequest",
    "HealthReport",
    "InvalidHandleError",
    "LocalBackend",
    "NodeResources",
    "NodeStatus",
    "PortRangeExhaustedError",
    "ProvisionError",
    "TeardownError",
    "UnknownBackendError",
    "UnsupportedRequestError",
    "get_backend",
]

# Add new ones here: name -> class. The name is what RAYLINE_CLUSTER_BACKEND holds
# and what `ClusterHandle.backend` records.
BACKENDS: dict[str, type[ClusterBackend]] = {
    LocalBackend.name: LocalBackend,
}


def get_backend(name: str, settings: Settings) -> ClusterBackend:
    """Build the backend registered under ``name``.

    Raises:
        UnknownBackendError: no backend has that name; the message lists the known ones.
    """
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(name, list(BACKENDS)) from None
    return backend_class(settings)
