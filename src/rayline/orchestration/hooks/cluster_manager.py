"""An Airflow hook around the Rayline Cluster Manager client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import (
    ClusterFailedError,
    ClusterManagerError,
    ClusterNotFoundError,
    NotFoundError,
)
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterPublic,
    ServicesPublic,
)
from rayline.coordination.base import ServiceEntry

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["ClusterManagerHook"]


class ClusterManagerHook(BaseHook):
    """Request, inspect, await and delete Ray clusters through the Rayline Cluster Manager.

    The Airflow Connection names the manager: ``host`` (a host name, or a full
    URL), ``port``, ``schema`` (the URL scheme, ``http`` by default) and the API
    token in ``password``. For example::

        AIRFLOW_CONN_RAYLINE_DEFAULT='{"conn_type": "rayline", "host": "127.0.0.1",
                                       "port": 8765, "password": "<token>"}'

    When the default connection ``rayline_default`` does not exist, the Rayline
    settings (``RAYLINE_CLUSTER_MANAGER_URL``, ``RAYLINE_API_TOKEN``) are used, so
    the embedded demo needs no Airflow setup. A missing non-default connection is
    an error.

    :param rayline_conn_id: the :ref:`Rayline connection <howto/connection:rayline>`
        of the Cluster Manager.
    :param timeout: seconds to wait for one HTTP answer (long-polls add their own wait).
    :param max_retries: how often the client retries a request that failed on the
        network or with HTTP 5xx/429, with exponential backoff (8: about a minute, so
        a restarting manager is waited for).
    """

    conn_name_attr = "rayline_conn_id"
    default_conn_name = "rayline_default"
    conn_type = "rayline"
    hook_name = "Rayline Cluster Manager"

    def __init__(
        self,
        rayline_conn_id: str = default_conn_name,
        *,
        timeout: float = 30,
        max_retries: int = 8,
    ) -> None:
        super().__init__()
        self.rayline_conn_id = rayline_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: ClusterManagerClient | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the connection form's fields for the Cluster Manager."""
        return {
            "hidden_fields": ["login", "extra"],
            "relabeling": {"password": "API token", "schema": "Scheme (http or https)"},
            "placeholders": {"host": "127.0.0.1", "port": "8765", "schema": "http"},
        }

    def get_conn(self) -> ClusterManagerClient:
        """Return the Cluster Manager client of this hook's connection (built once)."""
        if self._client is None:
            try:
                connection: Connection | None = self.get_connection(self.rayline_conn_id)
            except AirflowNotFoundException:
                self._check_fallback_allowed()
                connection = None
            self._client = self._client_for(connection)
        return self._client

    async def aget_conn(self) -> ClusterManagerClient:
        """Like `get_conn`, reading the connection without blocking the event loop (triggers).

        The client itself is blocking: call its methods with ``asyncio.to_thread``.
        """
        if self._client is None:
            try:
                connection: Connection | None = await self.aget_connection(self.rayline_conn_id)
            except AirflowNotFoundException:
                self._check_fallback_allowed()
                connection = None
            self._client = self._client_for(connection)
        return self._client

    def _check_fallback_allowed(self) -> None:
        """The connection is missing: fine for the default one (use settings), else an error."""
        if self.rayline_conn_id != self.default_conn_name:
            raise AirflowNotFoundException(
                f"the Airflow connection {self.rayline_conn_id!r} does not exist; create it "
                "(host, port, API token as password) or use rayline_default"
            )
        self.log.info(
            "No Airflow connection %s; using the Rayline settings "
            "(RAYLINE_CLUSTER_MANAGER_URL, RAYLINE_API_TOKEN)",
            self.rayline_conn_id,
        )

    def _client_for(self, connection: Connection | None) -> ClusterManagerClient:
        address = token = None
        if connection is not None:
            address = _base_url(connection.host, connection.port, connection.schema)
            token = connection.password or None
        return ClusterManagerClient(
            address, token=token, timeout=self.timeout, max_retries=self.max_retries
        )

    def close(self) -> None:
        """Close the client's connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Check that the manager answers and accepts the token.

        Returns:
            ``(True, message)`` when an authenticated request succeeded, else
            ``(False, reason)``.
        """
        try:
            client = self.get_conn()
            client.health()
            client.list_clusters(limit=1)  # the health check needs no token; this does
        except ClusterManagerError as exc:
            return False, str(exc)
        return True, f"Cluster Manager at {client.address} answered and accepted the token"

    # ------------------------------------------------------------ clusters
    def create_cluster(self, spec: ClusterCreate) -> ClusterPublic:
        """Ask for a cluster (idempotent per ``spec.request_id``); see `ClusterManagerClient`."""
        return self.get_conn().create_cluster(spec)

    def get_cluster(self, cluster_id: str) -> ClusterPublic:
        """Return one cluster as the manager last saw it."""
        return self.get_conn().get_cluster(cluster_id)

    def get_cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        """The cluster's Ray token, for its job hooks (secret: never log it)."""
        return self.get_conn().cluster_credentials(cluster_id)

    def wait_until_ready(
        self,
        cluster_id: str,
        *,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
    ) -> ClusterPublic:
        """Wait until the cluster is READY.

        Raises:
            ClusterFailedError: the cluster failed or ended first.
            WaitTimeoutError: ``timeout`` seconds passed first.
        """
        return self.get_conn().wait_until_ready(cluster_id, timeout=timeout, on_poll=on_poll)

    def wait_until_terminated(self, cluster_id: str, *, timeout: float) -> ClusterPublic:
        """Wait until a deleted cluster has released everything (TERMINATED or FAILED)."""
        client = self.get_conn()
        cluster = client.get_cluster(cluster_id)
        if cluster.state.is_terminal():
            return cluster
        try:
            return client.wait_until(cluster_id, state="TERMINATED", timeout=timeout)
        except ClusterFailedError:
            return client.get_cluster(cluster_id)  # it ended FAILED: ended all the same

    def delete_cluster(self, cluster_id: str) -> ClusterPublic | None:
        """Start deleting a cluster; idempotent.

        Returns:
            The cluster (usually TERMINATING), or None when the manager does not
            know it (already gone).
        """
        try:
            return self.get_conn().delete_cluster(cluster_id)
        except ClusterNotFoundError:
            self.log.info("Cluster %s does not exist; nothing to delete", cluster_id)
            return None

    def live_clusters(self, labels: Mapping[str, str]) -> list[ClusterPublic]:
        """Return the clusters carrying all ``labels`` that have not ended."""
        found = self.get_conn().list_clusters(labels=labels, limit=1000).data
        return [c for c in found if not c.state.is_terminal()]

    # ------------------------------------------------------------ services
    def live_endpoints(self, model: str) -> ServicesPublic:
        """Return the live serving endpoints of ``model``.

        Raises:
            NotFoundError: no live endpoint serves the model.
        """
        return self.get_conn().live_endpoints(model)

    def discover_endpoints(self, model: str) -> list[ServiceEntry]:
        """The live endpoints of ``model``, from ZooKeeper when coordination is configured.

        With ``RAYLINE_ZOOKEEPER_HOSTS`` set the answer comes from the endpoints'
        ephemeral znodes (it keeps working while every manager replica restarts);
        otherwise from this hook's Cluster Manager. Empty when nothing serves it.
        """
        from rayline.config import get_settings

        settings = get_settings()
        if settings.zookeeper_hosts:
            from rayline.coordination.discovery import Discovery

            with Discovery.from_settings(settings) as discovery:
                return discovery.services(model)
        try:
            found = self.live_endpoints(model).data
        except NotFoundError:
            return []
        return [ServiceEntry.of(endpoint) for endpoint in found]


def _base_url(host: str | None, port: int | None, schema: str | None) -> str | None:
    """The manager's URL from a connection's host/port/schema, like the HTTP provider's hook."""
    if not host:
        return None
    if "://" in host:
        return host.rstrip("/")
    url = f"{schema or 'http'}://{host}"
    return f"{url}:{port}" if port else url
