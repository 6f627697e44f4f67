"""Long-polls of the Cluster Manager that hold no worker thread while they wait.

A waiting request sleeps on the event loop until the cluster changes (every state
change the manager stores wakes it, from whichever thread stored it) or a short
poll interval passes (changes stored by another replica); only the brief database
read runs in a thread. Each client may hold only a few long-polls at once, so a
caller cannot tie up the manager's connections with waits.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from starlette.concurrency import run_in_threadpool

from rayline.clusters.service import ClusterService
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster

__all__ = ["ChangeFeed", "LongPolls", "TooManyWaitsError", "client_key"]

# Changes stored by another replica reach no listener here; look again this often.
POLL_SECONDS = 0.5


class TooManyWaitsError(Exception):
    """The client already holds as many long-polls as it may (HTTP 429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this client already waits on {limit} clusters at once "
            "(RAYLINE_API_MAX_WAITS_PER_CLIENT); wait for fewer clusters at a time"
        )


class ChangeFeed:
    """Wakes the long-polls of one event loop when any cluster changes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every waiter; safe to call from any thread (the provisioner's)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._event.set()
        self._event = asyncio.Event()  # later waiters wait for the next change

    def current(self) -> asyncio.Event:
        """The event the next change sets: take it before reading, then wait on it."""
        return self._event


class LongPolls:
    """Counts each client's long-polls and runs them on the event loop."""

    def __init__(self, service: ClusterService, feed: ChangeFeed, *, per_client: int) -> None:
        self._service = service
        self._feed = feed
        self._per_client = per_client
        self._held: dict[str, int] = {}  # touched only on the event loop: no lock

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """Hold one of ``client``'s long-poll slots.

        Raises:
            TooManyWaitsError: the client holds all of its slots already.
        """
        held = self._held.get(client, 0)
        if held >= self._per_client:
            raise TooManyWaitsError(self._per_client)
        self._held[client] = held + 1
        try:
            yield
        finally:
            left = self._held[client] - 1
            if left:
                self._held[client] = left
            else:
                del self._held[client]

    async def wait_for(self, cluster_id: str, state: ClusterState, timeout: float) -> Cluster:
        """The cluster once it is in ``state``, has ended, or ``timeout`` passed.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._feed.current()
            cluster = await run_in_threadpool(self._service.get, cluster_id)
            current = ClusterState(cluster.state)
            remaining = deadline - loop.time()
            if current == state or current.is_terminal() or remaining <= 0:
                return cluster
            with suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, POLL_SECONDS))


def client_key(host: str | None, authorization: str | None) -> str:
    """Who is waiting: the peer address and a digest of the credential it presented."""
    digest = hashlib.sha256((authorization or "").encode()).hexdigest()[:16]
    return f"{host or '?'}|{digest}"
