"""Find READY clusters and live endpoints from ZooKeeper, for clients.

`Discovery` keeps a watch-based cache of ``/rayline/clusters`` and
``/rayline/services`` (kazoo ``TreeCache``): one read of the tree at start, then
only watch notifications, so many clients looking up endpoints cause no polling
storm. The client SDK and the Airflow hook use it when
``RAYLINE_ZOOKEEPER_HOSTS`` is set, and ``GET /v1/services`` otherwise::

    with Discovery.from_settings(settings) as discovery:
        url = discovery.services("iris")[0].url
"""

from __future__ import annotations

import json
import threading
from types import TracebackType
from typing import Any

from kazoo.recipe.cache import TreeCache, TreeEvent

from rayline.config import Settings
from rayline.coordination.base import ClusterEntry, CoordinationUnavailableError, ServiceEntry
from rayline.coordination.paths import Paths
from rayline.coordination.zookeeper import connect

__all__ = ["Discovery", "live_endpoints"]


class Discovery:
    """A read-only, watch-updated view of the registry."""

    def __init__(self, client: Any, *, root: str = "/rayline", owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self.paths = Paths(root.rstrip("/") or "/rayline")
        self._cache = TreeCache(client, self.paths.root)
        self._initialized = threading.Event()
        self._cache.listen(self._on_event)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 10.0) -> Discovery:
        """Connect to ``settings.zookeeper_hosts`` and fill the cache.

        Raises:
            CoordinationUnavailableError: no hosts configured, or no answer in time.
        """
        if not settings.zookeeper_hosts:
            raise CoordinationUnavailableError("discovery", "not configured")
        client = connect(settings, wait=timeout)
        discovery = cls(client, root=settings.zookeeper_root, owns_client=True)
        discovery.start(timeout=timeout)
        return discovery

    def start(self, *, timeout: float = 10.0) -> None:
        """Read the tree once and start watching it."""
        self._client.ensure_path(self.paths.clusters)
        self._client.ensure_path(self.paths.services)
        self._cache.start()
        if not self._initialized.wait(timeout):
            raise CoordinationUnavailableError("discovery", "not answering")

    def close(self) -> None:
        """Stop watching (and disconnect when this object connected)."""
        self._cache.close()
        if self._owns_client:
            self._client.stop()
            self._client.close()

    def __enter__(self) -> Discovery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_event(self, event: Any) -> None:
        if event.event_type == TreeEvent.INITIALIZED:
            self._initialized.set()

    # ------------------------------------------------------------ queries
    def clusters(self, purpose: str | None = None) -> list[ClusterEntry]:
        """READY clusters, optionally of one purpose, sorted by id."""
        groups = [purpose] if purpose else sorted(self._children(self.paths.clusters))
        found = [
            ClusterEntry(**body)
            for group in groups
            for body in self._bodies(f"{self.paths.clusters}/{group}")
        ]
        return sorted(found, key=lambda c: c.id)

    def services(self, model: str | None = None) -> list[ServiceEntry]:
        """Live endpoints, optionally of one model, newest version first."""
        models = [model] if model else sorted(self._children(self.paths.services))
        found = [
            ServiceEntry(**endpoint)
            for name in models
            for body in self._bodies(f"{self.paths.services}/{name}")
            for endpoint in body.get("endpoints", [])
        ]
        return sorted(found, key=lambda s: (s.model_name, -s.model_version, s.url))

    def _children(self, path: str) -> set[str]:
        children = self._cache.get_children(path)
        return set(children) if children else set()

    def _bodies(self, parent: str) -> list[dict[str, Any]]:
        bodies = []
        for name in sorted(self._children(parent)):
            node = self._cache.get_data(f"{parent}/{name}")
            if node is not None and node.data:
                bodies.append(json.loads(node.data))
        return bodies


def live_endpoints(model: str, settings: Settings) -> list[ServiceEntry]:
    """The live endpoints of ``model``: from ZooKeeper when configured, else the REST API.

    For callers that look up once (the SDK, an Airflow hook); long-lived callers
    keep a `Discovery` open and ask it as often as they like.
    """
    if settings.zookeeper_hosts:
        with Discovery.from_settings(settings) as discovery:
            return discovery.services(model)
    from rayline.clusters.auth import resolve_token  # only without ZooKeeper
    from rayline.clusters.client import ClusterManagerClient

    token = resolve_token(settings)
    with ClusterManagerClient(settings.cluster_manager_url, token=token) as client:
        return [ServiceEntry.of(s) for s in client.live_endpoints(model).data]
