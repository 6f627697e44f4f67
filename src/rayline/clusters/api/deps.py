"""Dependencies of the API routes, gathered as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rayline.clusters.api.waits import LongPolls, client_key
from rayline.clusters.auth import tokens_match
from rayline.clusters.runtime import ManagerRuntime

__all__ = [
    "Authorized",
    "CallerIsAuthorized",
    "LongPollsDep",
    "RuntimeDep",
    "WaiterDep",
    "require_token",
]

_bearer = HTTPBearer(auto_error=False, description="RAYLINE_API_TOKEN")


def get_runtime(request: Request) -> ManagerRuntime:
    """The manager's services, created at start-up."""
    runtime: ManagerRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ManagerRuntime, Depends(get_runtime)]


def get_long_polls(request: Request) -> LongPolls:
    """The manager's long-polls, made at start-up."""
    polls: LongPolls = request.app.state.long_polls
    return polls


def get_waiter(request: Request) -> str:
    """Who asks, for the per-client cap on long-polls."""
    host = request.client.host if request.client is not None else None
    return client_key(host, request.headers.get("authorization"))


LongPollsDep = Annotated[LongPolls, Depends(get_long_polls)]
WaiterDep = Annotated[str, Depends(get_waiter)]


def require_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse the request (401) unless it carries the manager's bearer token."""
    if credentials is None or not tokens_match(credentials.credentials, runtime.token):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=(
                "missing or invalid bearer token; send 'Authorization: Bearer $RAYLINE_API_TOKEN'"
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Depends(require_token)


def caller_is_authorized(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> bool:
    """Whether the request carries the manager's token, for routes open to everyone."""
    return credentials is not None and tokens_match(credentials.credentials, runtime.token)


CallerIsAuthorized = Annotated[bool, Depends(caller_is_authorized)]
