"""The Cluster Manager's FastAPI application."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response, status
from fastapi.responses import JSONResponse

from rayline import __version__
from rayline.clusters.api.limits import BodyLimit
from rayline.clusters.api.routes import clusters, health, pools, services
from rayline.clusters.api.waits import ChangeFeed, LongPolls, TooManyWaitsError
from rayline.clusters.errors import (
    CapacityExceededError,
    ClusterNotFoundError,
    EndpointMismatchError,
    QuotaExceededError,
    UnknownModelVersionError,
)
from rayline.clusters.runtime import ManagerRuntime
from rayline.config import Settings, get_settings
from rayline.coordination import CoordinationUnavailableError

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, run_lifecycle: bool = True) -> FastAPI:
    """Build the app; the runtime starts with the app's lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ManagerRuntime.start(settings, run_lifecycle=run_lifecycle)
        app.state.runtime = runtime
        feed = ChangeFeed(asyncio.get_running_loop())
        runtime.service.change_listeners.append(feed.notify)
        app.state.long_polls = LongPolls(
            runtime.service, feed, per_client=settings.api_max_waits_per_client
        )
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="Rayline Cluster Manager",
        version=__version__,
        description="Provisions, watches, discovers and terminates Ray clusters.",
        lifespan=lifespan,
    )
    for router in (clusters.router, pools.router, services.router, health.router):
        app.include_router(router)
    _add_error_handlers(app)
    app.middleware("http")(_record_latency)
    # Added last, so it runs first: before routing, auth and any body parsing.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    return app


async def _record_latency(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    runtime: ManagerRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.metrics.request_seconds.labels(
            method=request.method,
            route=getattr(route, "path", "unmatched"),  # templated path: bounded label set
            status=str(response.status_code),
        ).observe(time.perf_counter() - started)
    return response


def _add_error_handlers(app: FastAPI) -> None:
    def handler(code: int) -> Callable[[Request, Exception], Response]:
        def respond(_: Request, exc: Exception) -> Response:
            retry = code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE)
            headers = {"Retry-After": "30"} if retry else None
            return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

        return respond

    app.add_exception_handler(ClusterNotFoundError, handler(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(UnknownModelVersionError, handler(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(QuotaExceededError, handler(status.HTTP_429_TOO_MANY_REQUESTS))
    app.add_exception_handler(EndpointMismatchError, handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(CapacityExceededError, handler(status.HTTP_409_CONFLICT))
    app.add_exception_handler(TooManyWaitsError, _too_many_waits)
    # A locked write while ZooKeeper is unreachable.
    app.add_exception_handler(
        CoordinationUnavailableError, handler(status.HTTP_503_SERVICE_UNAVAILABLE)
    )


def _too_many_waits(_: Request, exc: Exception) -> Response:
    # A slot frees as soon as one of the client's waits answers: retry soon.
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": "1"},
    )
