"""Typed Python client of the Cluster Manager REST API.

The CLI, the Airflow hook and user code all sit on this one client. Methods take
and return the wire schemas of `rayline.clusters.schemas`; every failed request
goes through `rayline.clusters._transport.Transport.raise_error`, which turns it
into one of the errors of `rayline.clusters.errors`. The waits live in
`_client_waits`, the service-discovery methods in `_client_services`.

Example:
    >>> from rayline.clusters.client import ClusterManagerClient
    >>> from rayline.clusters.schemas import ClusterCreate
    >>> with ClusterManagerClient() as client:  # doctest: +SKIP
    ...     cluster = client.create_cluster(ClusterCreate(name="train-1", purpose="training"))
    ...     cluster = client.wait_until_ready(cluster.id, timeout=600)
    ...     print(cluster.job_api_url)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr, TypeAdapter

from rayline.clusters._client_services import ServiceMethods
from rayline.clusters._client_waits import WaitMethods
from rayline.clusters._pages import collect
from rayline.clusters._transport import Transport, json_body, parse, parse_with, segment
from rayline.clusters.errors import (  # re-exported: callers catch them from the client
    AuthenticationError,
    CapacityExceededError,
    ClusterFailedError,
    ClusterManagerError,
    ClusterManagerUnavailableError,
    ClusterNotFoundError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
    WaitTimeoutError,
)
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterEventPublic,
    ClusterPublic,
    ClustersPublic,
    ClusterState,
    PoolsDrained,
    Purpose,
)

__all__ = [
    "AuthenticationError",
    "CapacityExceededError",
    "ClusterFailedError",
    "ClusterManagerClient",
    "ClusterManagerError",
    "ClusterManagerUnavailableError",
    "ClusterNotFoundError",
    "NotFoundError",
    "QuotaExceededError",
    "ValidationError",
    "WaitTimeoutError",
]

_EVENTS = TypeAdapter(list[ClusterEventPublic])


class ClusterManagerClient(WaitMethods, ServiceMethods):
    """A client for the Cluster Manager: request, inspect, await and delete Ray clusters.

    Requests that fail on the network, with HTTP 5xx or with 429 are retried with
    exponential backoff and jitter (``Retry-After`` is honoured); other 4xx answers
    are raised at once. Creating a cluster is safe to retry because every request
    carries an idempotency key (``request_id``), generated when the caller gives none.

    Args:
        address: base URL of the Cluster Manager, e.g. ``http://127.0.0.1:8765``.
            Defaults to ``RAYLINE_CLUSTER_MANAGER_URL`` (see `rayline.config`).
        token: the API bearer token. Defaults to ``RAYLINE_API_TOKEN``, else the
            token the manager generated in ``$RAYLINE_HOME/api-token`` in development.
        timeout: seconds to wait for one HTTP answer (long-polls get their own
            wait on top).
        max_retries: how many times to retry a failed request before giving up.
        backoff_base: first retry delay in seconds; doubles on every retry.
        backoff_max: upper bound of one retry delay in seconds.
        transport: an httpx transport, e.g. ``httpx.MockTransport`` in tests.
        sleep: how to wait between retries (tests pass a no-op).
        clock: a monotonic clock in seconds (tests pass a fake one).

    Example:
        >>> with ClusterManagerClient("http://127.0.0.1:8765") as client:  # doctest: +SKIP
        ...     print([c.name for c in client.list_clusters(state="READY").data])
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | SecretStr | None = None,
        timeout: float = 30,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if address is None or token is None:
            # Imported here: only the defaults need settings (and the token file).
            from rayline.clusters.auth import resolve_token
            from rayline.config import get_settings

            settings = get_settings()
            address = address or settings.cluster_manager_url
            if token is None:
                token = resolve_token(settings)
        if "://" not in address:
            address = f"http://{address}"
        self._token = SecretStr(token) if isinstance(token, str) else token
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._transport = Transport(
            address.rstrip("/"),
            token=self._token,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            transport=transport,
            sleep=sleep,
        )

    # ------------------------------------------------------------ lifecycle
    @property
    def address(self) -> str:
        """The Cluster Manager's base URL (without any credentials)."""
        return self._transport.address

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._transport.close()

    def __enter__(self) -> ClusterManagerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        token = "**********" if self._token is not None else None
        return f"ClusterManagerClient(address={self.address!r}, token={token!r})"

    # ------------------------------------------------------------ clusters
    def create_cluster(self, spec: ClusterCreate) -> ClusterPublic:
        """Ask for a Ray cluster; provisioning goes on in the background.

        Without a ``spec.request_id`` one is generated for this call, so retries
        after a lost answer return the same cluster instead of a second one.

        Args:
            spec: what to create.

        Returns:
            The new cluster, usually PENDING (or the existing one for a known
            ``request_id``).

        Raises:
            ValidationError: the server refused the spec (the fields are named).
            QuotaExceededError: too many clusters are live.
            CapacityExceededError: the live clusters leave too little of the
                backend's CPUs, memory or GPUs for this one.
            AuthenticationError: the token is missing or wrong.
            ClusterManagerUnavailableError: the manager did not answer.

        Example:
            >>> spec = ClusterCreate(name="train-1", purpose="training", worker_count=2)
            >>> cluster = client.create_cluster(spec)  # doctest: +SKIP
        """
        if spec.request_id is None:
            spec = spec.model_copy(update={"request_id": str(uuid.uuid4())})
        # Only the fields the caller set: the manager fills the rest, with the shared
        # default TTL and idle timeout when coordination sets them.
        body = spec.model_dump(mode="json", exclude_unset=True)
        response = self._transport.request("POST", "/v1/clusters", what="cluster spec", json=body)
        return parse(response, ClusterPublic)

    def get_cluster(self, cluster_id: str) -> ClusterPublic:
        """Return one cluster with its nodes and addresses.

        Args:
            cluster_id: the cluster's id.

        Returns:
            The cluster as last seen by the manager.

        Raises:
            ClusterNotFoundError: no cluster has this id.

        Example:
            >>> client.get_cluster("c-1a2b").state  # doctest: +SKIP
            <ClusterState.READY: 'READY'>
        """
        response = self._transport.request(
            "GET", f"/v1/clusters/{segment(cluster_id)}", what="cluster", cluster_id=cluster_id
        )
        return parse(response, ClusterPublic)

    def cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        """Return what calling the cluster's dashboard and Jobs API takes (its Ray token).

        Secret: keep it out of logs; `rayline.jobs.client.JobClient.for_cluster`
        uses it for you.

        Raises:
            ClusterNotFoundError: no cluster has this id.
            ClusterManagerError: the cluster has no Ray processes yet (409).
        """
        response = self._transport.request(
            "GET",
            f"/v1/clusters/{segment(cluster_id)}/credentials",
            what="cluster credentials",
            cluster_id=cluster_id,
        )
        return parse(response, ClusterCredentials)

    def list_clusters(
        self,
        *,
        purpose: Purpose | str | None = None,
        state: ClusterState | str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> ClustersPublic:
        """Return clusters, newest first, filtered by purpose, state and labels.

        Args:
            purpose: only ``training`` or ``serving`` clusters.
            state: only clusters in this state.
            labels: only clusters carrying every one of these labels.
            limit: at most this many; None: every match (page after page).

        Returns:
            The matching clusters and their count.

        Example:
            >>> client.list_clusters(purpose="serving", labels={"team": "ml"})  # doctest: +SKIP
        """
        params: list[tuple[str, str]] = []
        if purpose is not None:
            params.append(("purpose", str(purpose)))
        if state is not None:
            params.append(("state", str(state)))
        params += [("label", f"{k}={v}") for k, v in (labels or {}).items()]

        def page(size: int, offset: int) -> list[ClusterPublic]:
            response = self._transport.request(
                "GET",
                "/v1/clusters",
                what="cluster filter",
                params=[*params, ("limit", str(size)), ("offset", str(offset))],
            )
            return parse(response, ClustersPublic).data

        rows = collect(page, key=lambda c: c.id, limit=limit)
        return ClustersPublic(data=rows, count=len(rows))

    def cluster_events(self, cluster_id: str) -> list[ClusterEventPublic]:
        """Return the cluster's state transitions, oldest first.

        Args:
            cluster_id: the cluster's id.

        Returns:
            One event per transition, each with the reason.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """

        def page(size: int, offset: int) -> list[ClusterEventPublic]:
            response = self._transport.request(
                "GET",
                f"/v1/clusters/{segment(cluster_id)}/events",
                what="cluster",
                cluster_id=cluster_id,
                params=[("limit", str(size)), ("offset", str(offset))],
            )
            return parse_with(response, _EVENTS, "list of cluster events")

        return collect(page)  # only appended to, oldest first: pages never shift

    def delete_cluster(self, cluster_id: str) -> ClusterPublic:
        """Start tearing a cluster down; deleting an ending cluster is a no-op.

        Args:
            cluster_id: the cluster's id.

        Returns:
            The cluster, usually TERMINATING.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        response = self._transport.request(
            "DELETE", f"/v1/clusters/{segment(cluster_id)}", what="cluster", cluster_id=cluster_id
        )
        return parse(response, ClusterPublic)

    def drain_pools(self) -> list[str]:
        """End every fresh pooled cluster and stop refilling (before a shutdown).

        Returns:
            The ids of the pooled clusters drained.
        """
        response = self._transport.request(
            "POST", "/v1/pools/drain", what="pool drain", timeout=300
        )
        return parse(response, PoolsDrained).drained

    def health(self) -> dict[str, Any]:
        """Ask the manager whether it is up; no retries.

        Returns:
            The health document, e.g. ``{"status": "ok"}``; with the client's token
            also ``version``, ``backend`` and ``coordination``.

        Raises:
            ClusterManagerUnavailableError: the manager did not answer or is unhealthy.
        """
        response = self._transport.request("GET", "/healthz", what="health check", retry=False)
        body = json_body(response)
        if not isinstance(body, dict):
            raise ClusterManagerError(f"{self.address}/healthz answered {body!r}, not an object")
        return body
