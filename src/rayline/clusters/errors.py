"""Errors of the Cluster Manager, raised by the service and by the client SDK.

Each names the problem and how to fix it. The API maps the service-side ones to
HTTP statuses; the client maps statuses back to the same classes where it can.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CapacityExceededError",
    "ClusterFailedError",
    "ClusterManagerError",
    "ClusterManagerUnavailableError",
    "ClusterNotFoundError",
    "NotFoundError",
    "QuotaExceededError",
    "UnknownModelVersionError",
    "ValidationError",
    "WaitTimeoutError",
]


class ClusterManagerError(Exception):
    """Base class of every Cluster Manager error."""


class NotFoundError(ClusterManagerError, LookupError):
    """The resource the caller named does not exist (HTTP 404)."""


class ClusterNotFoundError(NotFoundError):
    """No cluster has this id (HTTP 404)."""

    def __init__(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        super().__init__(
            f"cluster {cluster_id!r} does not exist; list clusters with `rayline clusters list`"
        )


class QuotaExceededError(ClusterManagerError):
    """The live-cluster quota is reached (HTTP 429)."""

    def __init__(
        self, *, live: int | None = None, quota: int | None = None, detail: str | None = None
    ) -> None:
        self.live = live
        self.quota = quota
        hint = "delete clusters you no longer need or raise RAYLINE_MAX_LIVE_CLUSTERS"
        if live is not None and quota is not None:
            message = f"live-cluster quota reached: {live} of {quota} clusters are live; {hint}"
        else:
            # Client side: the server's detail, which normally carries the counts and hint.
            message = f"the Cluster Manager refused a new cluster: {detail or 'quota reached'}"
            if "RAYLINE_" not in message:  # the server named the setting already
                message += f"; {hint}"
        super().__init__(message)


class CapacityExceededError(ClusterManagerError):
    """The live clusters and this request together ask for more than the backend has (409)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        hint = "delete clusters you no longer need, or ask for fewer resources"
        super().__init__(problem if hint in problem else f"{problem}; {hint}")


class UnknownModelVersionError(NotFoundError):
    """A service names a model version that is not registered (HTTP 404)."""

    def __init__(self, model: str, version: int, *, detail: str | None = None) -> None:
        self.model = model
        self.version = version
        hint = f" ({detail})" if detail else ""
        super().__init__(
            f"model {model!r} version {version} is not registered{hint}; register the "
            "version before its endpoint"
        )


class EndpointMismatchError(ClusterManagerError, ValueError):
    """A service registration whose URL, cluster or deployment do not belong together (422).

    Attributes:
        field: the request field at fault (``url``, ``cluster_id``, ``deployment_id``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


# ---------------------------------------------------------------- client side
# Raised by `rayline.clusters.client` when it maps an HTTP answer (or its absence)
# back to a domain error.


class AuthenticationError(ClusterManagerError):
    """The Cluster Manager refused the API token, or none was given (HTTP 401/403)."""

    def __init__(self, address: str, *, token_given: bool) -> None:
        self.address = address
        if token_given:
            problem = "rejected the API token"
            fix = "check that RAYLINE_API_TOKEN holds the same token as the server's"
        else:
            problem = "needs an API token and none is configured"
            fix = "set RAYLINE_API_TOKEN to the server's token"
        super().__init__(f"the Cluster Manager at {address} {problem}; {fix}")


class ValidationError(ClusterManagerError, ValueError):
    """The Cluster Manager refused a request as invalid (HTTP 422).

    Attributes:
        fields: dotted names of the offending fields, e.g. ``["worker.cpus"]``.
        errors: the server's error entries (``loc``, ``msg``, ``type``).
    """

    def __init__(self, what: str, errors: list[dict[str, object]] | str) -> None:
        if isinstance(errors, str):
            self.errors: list[dict[str, object]] = []
            self.fields: list[str] = []
            super().__init__(f"invalid {what}: {errors}")
            return
        self.errors = errors
        self.fields = [_field_name(e.get("loc")) for e in errors]
        problems = "; ".join(
            f"{field}: {e.get('msg', 'invalid')}"
            for field, e in zip(self.fields, errors, strict=True)
        )
        super().__init__(f"invalid {what}: {problems}; fix these fields and send it again")


def _field_name(loc: object) -> str:
    """``["body", "worker", "cpus"]`` -> ``"worker.cpus"`` (drop where it was sent)."""
    if not isinstance(loc, list | tuple):
        return str(loc)
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "?"


class ClusterManagerUnavailableError(ClusterManagerError):
    """The Cluster Manager did not answer, or kept failing (connection errors, HTTP 5xx)."""


class ClusterFailedError(ClusterManagerError):
    """A cluster ended (FAILED, TERMINATED) or is ending before reaching the awaited state."""

    def __init__(self, cluster_id: str, *, state: str, reason: str | None, wanted: str) -> None:
        self.cluster_id = cluster_id
        self.state = state
        self.reason = reason
        super().__init__(
            f"cluster {cluster_id} is {state} and will never be {wanted}: "
            f"{reason or 'no reason recorded'}; see `rayline clusters events {cluster_id}`"
        )


class WaitTimeoutError(ClusterManagerError, TimeoutError):
    """A cluster did not reach the awaited state in time; it may still get there."""

    def __init__(self, cluster_id: str, *, wanted: str, state: str, timeout: float) -> None:
        self.cluster_id = cluster_id
        self.state = state
        self.timeout = timeout
        super().__init__(
            f"cluster {cluster_id} is still {state}, not {wanted}, after {timeout:g} s; "
            f"wait longer with `rayline clusters wait {cluster_id} --timeout SECONDS` or "
            f"look at `rayline clusters events {cluster_id}`"
        )
