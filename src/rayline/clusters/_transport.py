"""The HTTP plumbing under `ClusterManagerClient`: auth, retries, error mapping, parsing.

Every request of the client goes through `Transport.request`, which retries what
may succeed on another try (network errors, HTTP 5xx and 429, with exponential
backoff, jitter and ``Retry-After``) and turns every other failed answer into
one of the errors of `rayline.clusters.errors` in `Transport.raise_error`.
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from rayline.clusters.errors import (
    AuthenticationError,
    CapacityExceededError,
    ClusterManagerError,
    ClusterManagerUnavailableError,
    ClusterNotFoundError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
)

__all__ = ["Transport", "display_url", "json_body", "parse", "parse_with", "segment"]

log = logging.getLogger("rayline.clusters.client")

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")
_SERVE_HINT = "start it with `rayline cluster-manager serve` or set RAYLINE_CLUSTER_MANAGER_URL"
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


class Transport:
    """One httpx client to one Cluster Manager, with retries and error mapping.

    Args:
        address: base URL (may hold user:password, never shown in messages).
        token: the bearer token, or None to send none.
        timeout: seconds to wait for one HTTP answer.
        max_retries: retries of a failed request before giving up.
        backoff_base: first retry delay in seconds; doubles on every retry.
        backoff_max: upper bound of one retry delay in seconds.
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        sleep: how to wait between retries.
    """

    def __init__(
        self,
        address: str,
        *,
        token: SecretStr | None,
        timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.token = token
        self.address = display_url(address)
        self.timeout = timeout
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=address,
            auth=_BearerAuth(token) if token is not None else None,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
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
        """Send one request, retrying transient failures; return a 2xx response.

        Raises:
            ClusterManagerError: the matching subclass for the failed answer.
        """
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
            self.raise_error(response, what=what, cluster_id=cluster_id)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send(self, request: httpx.Request, *, auth: bool) -> httpx.Response:
        """One attempt: the answer, or `_Retry` when another try may succeed."""
        try:
            response = self._http.send(request, auth=httpx.USE_CLIENT_DEFAULT if auth else None)
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            why = f"HTTP {response.status_code}: {self.scrub(_detail(response))}"
            raise _Retry(why, response=response)
        return response

    def raise_error(
        self, response: httpx.Response, *, what: str, cluster_id: str | None = None
    ) -> NoReturn:
        """Turn a failed answer into the matching `ClusterManagerError`; always raises."""
        status = response.status_code
        detail = self.scrub(_detail(response))
        if status in (401, 403):
            raise AuthenticationError(self.address, token_given=self.token is not None)
        if status == 404:
            if detail == "Not Found":  # FastAPI's answer for an unknown route
                raise NotFoundError(
                    f"{self.address} has no route {response.request.method} "
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
        if status == 409 and what == "cluster spec":
            raise CapacityExceededError(detail)
        if status == 429:
            raise QuotaExceededError(detail=detail)
        if status >= 500:
            raise ClusterManagerUnavailableError(
                f"the Cluster Manager at {self.address} failed {response.request.method} "
                f"{response.request.url.path} with HTTP {status}: {detail}; check its logs"
            )
        raise ClusterManagerError(
            f"the Cluster Manager at {self.address} refused {response.request.method} "
            f"{response.request.url.path} with HTTP {status}: {detail}"
        )

    def _give_up(
        self, request: httpx.Request, what: str, failure: _Retry, attempts: int
    ) -> NoReturn:
        if failure.response is not None:
            self.raise_error(failure.response, what=what)
        raise ClusterManagerUnavailableError(
            f"cannot reach the Cluster Manager at {self.address} ({request.method} "
            f"{request.url.path}, {attempts} attempt(s), last: {self.scrub(failure.why)}); "
            f"{_SERVE_HINT}"
        )

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential backoff with jitter, capped; a Retry-After header wins."""
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, _MAX_RETRY_AFTER_SECONDS)
        delay = min(self._backoff_max, self._backoff_base * 2.0**attempt)
        # "Equal jitter": keep half the delay, randomise the rest, so many clients
        # retrying together spread out but none retries immediately.
        return delay / 2 + random.uniform(0, delay / 2)

    def scrub(self, text: str) -> str:
        """Remove the token from text that came from elsewhere (server detail, errors)."""
        if self.token is None:
            return text
        secret = self.token.get_secret_value()
        return text.replace(secret, "**********") if secret else text


def segment(value: str) -> str:
    """Quote one path segment, so an id can never change the route."""
    return quote(str(value), safe="")


def display_url(address: str) -> str:
    """The address without any user:password part, fit for messages."""
    url = httpx.URL(address)
    return str(url.copy_with(username=None, password=None)) if url.userinfo else address


def retry_after(value: str | None) -> float | None:
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


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON body.

    Raises:
        ClusterManagerError: the body is not JSON.
    """
    body = _json_or_none(response)
    if body is None:
        raise ClusterManagerError(
            f"{response.request.url} answered something that is not JSON; is the address "
            "that of the Cluster Manager?"
        )
    return body


def parse(response: httpx.Response, model: type[_Model]) -> _Model:
    """The answer as ``model``; a mismatch is a `ClusterManagerError` naming the version."""
    try:
        return model.model_validate_json(response.content)
    except PydanticValidationError as exc:
        raise _unexpected(response, model.__name__, exc) from exc


def parse_with(response: httpx.Response, adapter: TypeAdapter[_T], expected: str) -> _T:
    """The answer through a `TypeAdapter` (lists and other non-model shapes)."""
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
