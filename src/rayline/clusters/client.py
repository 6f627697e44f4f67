"""Typed Python client of the Cluster Manager REST API.

The CLI, the Airflow hook and user code all sit on this one client. Methods take
and return the wire schemas of `rayline.clusters.schemas`; every failed request
goes through `ClusterManagerClient._raise_error`, which turns it into one of the
errors of `rayline.clusters.errors`.

Example:
    >>> from rayline.clusters.client import ClusterManagerClient
    >>> from rayline.clusters.schemas import ClusterCreate
    >>> with ClusterManagerClient() as client:  # doctest: +SKIP
    ...     cluster = client.create_cluster(ClusterCreate(name="train-1", purpose="training"))
    ...     cluster = client.wait_until_ready(cluster.id, timeout=600)
    ...     print(cluster.job_api_url)
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from rayline.clusters.errors import (
    AuthenticationError,
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
    ClusterEventPublic,
    ClusterPublic,
    ClustersPublic,
    ClusterState,
    Purpose,
    ServiceCreate,
    ServicePublic,
    ServicesPublic,
)

__all__ = ["ClusterManagerClient"]

log = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")
_EVENTS = TypeAdapter(list[ClusterEventPublic])
_SERVE_HINT = "start it with `rayline cluster-manager serve` or set RAYLINE_CLUSTER_MANAGER_URL"
# The server caps one long-poll at 60 s; asking for more only delays progress reports.
_MAX_POLL_SECONDS = 60.0
# A long-poll that comes back at once without news would spin; wait this long instead.
_MIN_POLL_SECONDS = 1.0
# Never sleep longer than this on a Retry-After, whatever the server asks.
_MAX_RETRY_AFTER_SECONDS = 60.0


class _BearerAuth(httpx.Auth):
    """Adds the bearer token to each request; the token stays a SecretStr until then."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(token=**********)"


class _Retry(Exception):
    """Internal: this attempt failed in a way worth trying again."""

    def __init__(self, why: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.response = response


class ClusterManagerClient:
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
        self._address = _display_url(address.rstrip("/"))
        self._timeout = timeout
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=address.rstrip("/"),
            auth=_BearerAuth(self._token) if self._token is not None else None,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    # ------------------------------------------------------------ lifecycle
    @property
    def address(self) -> str:
        """The Cluster Manager's base URL (without any credentials)."""
        return self._address

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

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
        return f"ClusterManagerClient(address={self._address!r}, token={token!r})"

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
            AuthenticationError: the token is missing or wrong.
            ClusterManagerUnavailableError: the manager did not answer.

        Example:
            >>> spec = ClusterCreate(name="train-1", purpose="training", worker_count=2)
            >>> cluster = client.create_cluster(spec)  # doctest: +SKIP
        """
        if spec.request_id is None:
            spec = spec.model_copy(update={"request_id": str(uuid.uuid4())})
        # Only the fields the caller set: the manager fills the rest, with the shared
        # default TTL and idle timeout when coordination sets them (issue 8).
        body = spec.model_dump(mode="json", exclude_unset=True)
        response = self._request("POST", "/v1/clusters", what="cluster spec", json=body)
        return _parse(response, ClusterPublic)

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
        response = self._request(
            "GET", f"/v1/clusters/{_seg(cluster_id)}", what="cluster", cluster_id=cluster_id
        )
        return _parse(response, ClusterPublic)

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
            limit: at most this many (the server's default when None).

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
        if limit is not None:
            params.append(("limit", str(limit)))
        response = self._request("GET", "/v1/clusters", what="cluster filter", params=params)
        return _parse(response, ClustersPublic)

    def cluster_events(self, cluster_id: str) -> list[ClusterEventPublic]:
        """Return the cluster's state transitions, oldest first.

        Args:
            cluster_id: the cluster's id.

        Returns:
            One event per transition, each with the reason.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        response = self._request(
            "GET",
            f"/v1/clusters/{_seg(cluster_id)}/events",
            what="cluster",
            cluster_id=cluster_id,
        )
        return _parse_with(response, _EVENTS, "list of cluster events")

    def delete_cluster(self, cluster_id: str) -> ClusterPublic:
        """Start tearing a cluster down; deleting an ending cluster is a no-op.

        Args:
            cluster_id: the cluster's id.

        Returns:
            The cluster, usually TERMINATING.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        response = self._request(
            "DELETE", f"/v1/clusters/{_seg(cluster_id)}", what="cluster", cluster_id=cluster_id
        )
        return _parse(response, ClusterPublic)

    def wait_for_state(
        self, cluster_id: str, *, state: ClusterState | str, timeout: float
    ) -> ClusterPublic:
        """Long-poll once: return when the cluster is in ``state``, ends, or time is up.

        One poll lasts at most 60 s (longer timeouts are cut to that), so check
        the returned state; use `wait_until` to wait longer or to get an error
        when the cluster fails.

        Args:
            cluster_id: the cluster's id.
            state: the state to wait for.
            timeout: seconds the server should wait at most (60 at most).

        Returns:
            The cluster when the poll ended, in whatever state it was.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        timeout = min(max(0.0, timeout), _MAX_POLL_SECONDS)  # the server refuses more
        response = self._request(
            "POST",
            f"/v1/clusters/{_seg(cluster_id)}/wait",
            what="wait request",
            cluster_id=cluster_id,
            params=[("state", str(state)), ("timeout", f"{timeout:.3f}")],
            # The server holds the answer for up to `timeout`; don't give up before it.
            timeout=self._timeout + timeout,
        )
        return _parse(response, ClusterPublic)

    def wait_until(
        self,
        cluster_id: str,
        *,
        state: ClusterState | str,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
        poll_timeout: float = _MAX_POLL_SECONDS,
    ) -> ClusterPublic:
        """Wait until the cluster is in ``state``, long-polling the manager.

        Args:
            cluster_id: the cluster's id.
            state: the state to wait for, e.g. READY or TERMINATED.
            timeout: seconds to wait in total.
            on_poll: called with the cluster after every poll (progress reports).
            poll_timeout: seconds one long-poll may last; lower it for more
                frequent ``on_poll`` calls.

        Returns:
            The cluster, in ``state``.

        Raises:
            ClusterFailedError: the cluster ended, or is ending, without reaching
                ``state``; the error carries the state and reason.
            WaitTimeoutError: ``timeout`` passed first.
            ClusterNotFoundError: no cluster has this id.

        Example:
            >>> client.wait_until(cid, state="TERMINATED", timeout=120)  # doctest: +SKIP
        """
        wanted = ClusterState(state)
        deadline = self._clock() + timeout
        cluster = self.get_cluster(cluster_id)
        while True:
            if on_poll is not None:
                on_poll(cluster)
            if cluster.state == wanted:
                return cluster
            if _unreachable(cluster.state, wanted):
                raise ClusterFailedError(
                    cluster_id, state=cluster.state, reason=cluster.reason, wanted=wanted
                )
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeoutError(
                    cluster_id, wanted=wanted, state=cluster.state, timeout=timeout
                )
            started = self._clock()
            cluster = self.wait_for_state(
                cluster_id, state=wanted, timeout=min(remaining, poll_timeout)
            )
            spent = self._clock() - started
            pending = cluster.state != wanted and not _unreachable(cluster.state, wanted)
            if pending and spent < _MIN_POLL_SECONDS:
                self._sleep(max(0.0, min(_MIN_POLL_SECONDS - spent, deadline - self._clock())))

    def wait_until_ready(
        self,
        cluster_id: str,
        *,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
    ) -> ClusterPublic:
        """Wait until the cluster is READY: GCS healthy, every node alive, job API up.

        Args:
            cluster_id: the cluster's id.
            timeout: seconds to wait in total.
            on_poll: called with the cluster after every poll (progress reports).

        Returns:
            The READY cluster, with ``job_api_url`` set.

        Raises:
            ClusterFailedError: the cluster FAILED or was terminated; see ``reason``.
            WaitTimeoutError: ``timeout`` passed first.
            ClusterNotFoundError: no cluster has this id.

        Example:
            >>> cluster = client.wait_until_ready(cid, timeout=600)  # doctest: +SKIP
            >>> cluster.job_api_url  # doctest: +SKIP
            'http://127.0.0.1:8265'
        """
        return self.wait_until(
            cluster_id, state=ClusterState.READY, timeout=timeout, on_poll=on_poll
        )

    # ------------------------------------------------------------ services
    def register_service(self, spec: ServiceCreate) -> ServicePublic:
        """Register (or replace, by URL) a serving endpoint of a model version.

        Args:
            spec: the endpoint.

        Returns:
            The registered endpoint.

        Raises:
            NotFoundError: the model version or the backing cluster does not exist.
            ValidationError: the server refused the spec.
        """
        response = self._request(
            "POST", "/v1/services", what="service", json=spec.model_dump(mode="json")
        )
        return _parse(response, ServicePublic)

    def list_services(self, model: str | None = None) -> ServicesPublic:
        """Return registered endpoints, optionally of one model only.

        Args:
            model: a model name.

        Returns:
            The endpoints and their count.
        """
        params = [("model", model)] if model is not None else []
        response = self._request("GET", "/v1/services", what="service filter", params=params)
        return _parse(response, ServicesPublic)

    def live_endpoints(self, model: str) -> ServicesPublic:
        """Return the live endpoints serving ``model``.

        Args:
            model: a model name.

        Returns:
            The endpoints (at least one).

        Raises:
            NotFoundError: no live endpoint serves this model; deploy it first.

        Example:
            >>> url = client.live_endpoints("iris").data[0].url  # doctest: +SKIP
        """
        response = self._request("GET", f"/v1/services/{_seg(model)}", what=f"model {model!r}")
        return _parse(response, ServicesPublic)

    def deregister_service(self, service_id: int) -> None:
        """Remove a serving endpoint.

        Args:
            service_id: the endpoint's id.

        Raises:
            NotFoundError: no endpoint has this id.
        """
        self._request("DELETE", f"/v1/services/{int(service_id)}", what=f"service {service_id}")

    def health(self) -> dict[str, Any]:
        """Ask the manager whether it is up; no token needed, no retries.

        Returns:
            The health document, e.g. ``{"status": "ok", ...}``.

        Raises:
            ClusterManagerUnavailableError: the manager did not answer or is unhealthy.
        """
        response = self._request("GET", "/healthz", what="health check", retry=False, auth=False)
        body = _json(response)
        if not isinstance(body, dict):
            raise ClusterManagerError(f"{self._address}/healthz answered {body!r}, not an object")
        return body

    # ------------------------------------------------------------ plumbing
    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        cluster_id: str | None = None,
        params: list[tuple[str, str]] | None = None,
        json: dict[str, Any] | None = None,
        timeout: float | None = None,
        retry: bool = True,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request, retrying transient failures; return a 2xx response."""
        request = self._http.build_request(
            method,
            path,
            params=tuple(params) if params else None,  # tuples: covariant for mypy
            json=json,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        attempts = 1 + (self._max_retries if retry else 0)
        for attempt in range(attempts):
            try:
                response = self._send(request, auth=auth)
            except _Retry as failure:
                if attempt + 1 >= attempts:
                    self._give_up(request, what, failure, attempts)
                delay = self._backoff(attempt, failure.response)
                log.warning(
                    "Cluster Manager %s %s: %s; retry %d of %d in %.1f s",
                    method,
                    path,
                    failure.why,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                self._sleep(delay)
                continue
            if response.is_success:
                return response
            self._raise_error(response, what=what, cluster_id=cluster_id)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send(self, request: httpx.Request, *, auth: bool) -> httpx.Response:
        """One attempt: the answer, or `_Retry` when another try may succeed."""
        try:
            response = self._http.send(request, auth=httpx.USE_CLIENT_DEFAULT if auth else None)
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            why = f"HTTP {response.status_code}: {self._scrub(_detail(response))}"
            raise _Retry(why, response=response)
        return response

    def _raise_error(
        self, response: httpx.Response, *, what: str, cluster_id: str | None = None
    ) -> NoReturn:
        """Turn a failed answer into the matching `ClusterManagerError`; always raises."""
        status = response.status_code
        detail = self._scrub(_detail(response))
        if status in (401, 403):
            raise AuthenticationError(self._address, token_given=self._token is not None)
        if status == 404:
            if detail == "Not Found":  # FastAPI's answer for an unknown route
                raise NotFoundError(
                    f"{self._address} has no route {response.request.method} "
                    f"{response.request.url.path}; is RAYLINE_CLUSTER_MANAGER_URL the "
                    "address of a Cluster Manager of the same Rayline version?"
                )
            if cluster_id is not None:
                raise ClusterNotFoundError(cluster_id)
            raise NotFoundError(detail or f"{what} not found")
        if status == 422:
            errors = _json_or_none(response)
            entries = errors.get("detail") if isinstance(errors, dict) else None
            if isinstance(entries, list):
                raise ValidationError(what, [e for e in entries if isinstance(e, dict)])
            raise ValidationError(what, detail)
        if status == 429:
            raise QuotaExceededError(detail=detail)
        if status >= 500:
            raise ClusterManagerUnavailableError(
                f"the Cluster Manager at {self._address} failed {response.request.method} "
                f"{response.request.url.path} with HTTP {status}: {detail}; check its logs"
            )
        raise ClusterManagerError(
            f"the Cluster Manager at {self._address} refused {response.request.method} "
            f"{response.request.url.path} with HTTP {status}: {detail}"
        )

    def _give_up(
        self, request: httpx.Request, what: str, failure: _Retry, attempts: int
    ) -> NoReturn:
        if failure.response is not None:
            self._raise_error(failure.response, what=what)
        raise ClusterManagerUnavailableError(
            f"cannot reach the Cluster Manager at {self._address} ({request.method} "
            f"{request.url.path}, {attempts} attempt(s), last: {self._scrub(failure.why)}); "
            f"{_SERVE_HINT}"
        )

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential backoff with jitter, capped; a Retry-After header wins."""
        if response is not None:
            after = _retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, _MAX_RETRY_AFTER_SECONDS)
        delay = min(self._backoff_max, self._backoff_base * 2.0**attempt)
        # "Equal jitter": keep half the delay, randomise the rest, so many clients
        # retrying together spread out but none retries immediately.
        return delay / 2 + random.uniform(0, delay / 2)

    def _scrub(self, text: str) -> str:
        """Remove the token from text that came from elsewhere (server detail, errors)."""
        if self._token is None:
            return text
        secret = self._token.get_secret_value()
        return text.replace(secret, "**********") if secret else text


def _unreachable(current: ClusterState, wanted: ClusterState) -> bool:
    """True when a cluster in ``current`` can never get to ``wanted``."""
    if current == wanted:
        return False
    if current.is_terminal():
        return True
    # TERMINATING only leads to TERMINATED (or FAILED).
    return current == ClusterState.TERMINATING and not wanted.is_terminal()


def _seg(value: str) -> str:
    """Quote one path segment, so an id can never change the route."""
    return quote(str(value), safe="")


def _display_url(address: str) -> str:
    """The address without any user:password part, fit for messages."""
    url = httpx.URL(address)
    return str(url.copy_with(username=None, password=None)) if url.userinfo else address


def _retry_after(value: str | None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    """The FastAPI ``detail`` of an error answer, else the start of its body."""
    body = _json_or_none(response)
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)
    return response.text[:500] or response.reason_phrase


def _json(response: httpx.Response) -> Any:
    body = _json_or_none(response)
    if body is None:
        raise ClusterManagerError(
            f"{response.request.url} answered something that is not JSON; is the address "
            "that of the Cluster Manager?"
        )
    return body


def _parse(response: httpx.Response, model: type[_Model]) -> _Model:
    try:
        return model.model_validate_json(response.content)
    except PydanticValidationError as exc:
        raise _unexpected(response, model.__name__, exc) from exc


def _parse_with(response: httpx.Response, adapter: TypeAdapter[_T], expected: str) -> _T:
    try:
        return adapter.validate_json(response.content)
    except PydanticValidationError as exc:
        raise _unexpected(response, expected, exc) from exc


def _unexpected(response: httpx.Response, expected: str, exc: PydanticValidationError) -> Exception:
    return ClusterManagerError(
        f"{response.request.method} {response.request.url.path} answered something that is "
        f"not a {expected} ({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}); "
        "are client and server the same Rayline version?"
    )
