"""ZooKeeper locks taken outside the Cluster Manager: by deploy jobs and CLIs.

The manager's own locks go through its `Coordinator`; a deploy runs as a Ray job
on a serving cluster (or in a CLI) and must hold its model's lock for minutes,
across the whole update, so it opens a ZooKeeper session of its own::

    with held_lock(settings, "deploy-iris", timeout=1800, waiting=print):
        ...  # choose the version, start it, switch the endpoint, retire the old one

Without ``RAYLINE_ZOOKEEPER_HOSTS`` it holds nothing (one manager, as before).
The lock is a kazoo ``Lock`` under ``<root>/locks/<name>``: an ephemeral,
sequential node per contender, so a holder that dies releases it with its session.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kazoo.exceptions import KazooException, LockTimeout
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState

from rayline.config import Settings
from rayline.coordination.base import CoordinationUnavailableError
from rayline.coordination.paths import Paths
from rayline.coordination.zookeeper import connect

__all__ = ["LockHeldError", "LockLease", "held_lock"]

_CONNECT_TIMEOUT_SECONDS = 10.0


class LockHeldError(RuntimeError):
    """Somebody else held the lock for longer than we were willing to wait."""

    def __init__(self, name: str, holder: str, timeout: float) -> None:
        super().__init__(
            f"lock {name} is still held by {holder or 'another holder'} after {timeout:g}s"
        )
        self.name = name
        self.holder = holder


class LockLease:
    """Whether a held lock is still held: ZooKeeper drops it with an expired session."""

    def __init__(self) -> None:
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        """True once the session holding the lock expired (its lock node is gone)."""
        return self._lost.is_set()

    def session_changed(self, state: str) -> None:
        """A kazoo connection listener: remember a lost session."""
        if state == KazooState.LOST:
            self._lost.set()


@contextmanager
def held_lock(
    settings: Settings,
    name: str,
    *,
    timeout: float,
    waiting: Callable[[str], None] | None = None,
    holder: str = "",
) -> Iterator[LockLease]:
    """Hold lock ``name`` on ZooKeeper for the block; a no-op without ZooKeeper.

    Yields a `LockLease`: check ``lost`` before a step that only the holder may
    take, since a session that expires mid-block takes the lock with it.

    Args:
        settings: ``zookeeper_hosts``, ``zookeeper_root`` and the session timeout.
        name: The lock's name (``deploy-<model>``).
        timeout: Seconds to wait for the current holder.
        waiting: Told who holds the lock when this call has to wait.
        holder: What this holder is doing, shown to the ones waiting.

    Raises:
        CoordinationUnavailableError: ZooKeeper does not answer.
        LockHeldError: The lock stayed held for ``timeout`` seconds.
    """
    if not settings.zookeeper_hosts:
        yield LockLease()
        return
    client = connect(settings, wait=_CONNECT_TIMEOUT_SECONDS)
    lease = LockLease()
    client.add_listener(lease.session_changed)
    try:
        paths = Paths(settings.zookeeper_root.rstrip("/") or "/rayline")
        identifier = f"{socket.gethostname()}:{os.getpid()} {holder}".strip()
        lock = client.Lock(paths.lock(name), identifier)
        holder_now = ""
        try:
            if not lock.acquire(blocking=False):
                holders = lock.contenders()
                holder_now = holders[0] if holders else "another holder"
                if waiting is not None:
                    waiting(f"waiting for lock {name}, held by {holder_now}")
                if not lock.acquire(timeout=timeout):
                    raise LockHeldError(name, holder_now, timeout)
        except LockTimeout as exc:
            raise LockHeldError(name, holder_now, timeout) from exc
        except (KazooException, KazooTimeoutError) as exc:
            raise CoordinationUnavailableError(name, "not answering") from exc
        try:
            yield lease
        finally:
            with contextlib.suppress(KazooException, KazooTimeoutError):
                lock.release()
    finally:
        client.stop()
        client.close()
