"""`Coordinator` on ZooKeeper, with kazoo's recipes doing the coordinating.

- Leader election (kazoo ``Election``): exactly one replica runs the lifecycle
  manager. Leadership ends when the connection is suspended or the session is
  lost (another replica may be elected once the server expires the session), and
  the campaign resumes after reconnection.
- Locks (kazoo ``Lock``) named by purpose: ``cluster-quota``,
  ``ports-<host>``, ``model-<name>``.
- Registration: READY clusters and live endpoints as ephemeral znodes, brought in
  line with the metadata store on every change this replica makes and, on the
  leader, every reaper interval (so entries of a dead owner come back).
- Shared config (kazoo ``DataWatch`` on ``/rayline/config``), applied in place.
- Membership: an ephemeral ``/rayline/members/<member id>`` per replica. A cluster
  records the member id of the replica provisioning or terminating it (``owner``);
  the leader leaves such a cluster alone while that node exists and takes it over
  once it is gone (`rayline.clusters.lifecycle`).

Degraded mode: when ZooKeeper cannot be reached the manager keeps answering
reads from Postgres, stops leading, refuses writes that need a distributed lock
(`CoordinationUnavailableError`, HTTP 503), says so in ``/healthz`` and the log,
and resumes everything when the connection comes back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    CancelledError,
    KazooException,
    LockTimeout,
    NodeExistsError,
    NoNodeError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import ZnodeStat

from rayline.config import Settings
from rayline.coordination.acl import client_security
from rayline.coordination.base import (
    CoordinationUnavailableError,
    Coordinator,
    RegistrySnapshot,
    new_member_id,
)
from rayline.coordination.paths import Paths
from rayline.coordination.shared_config import SharedConfigApplier, decode

__all__ = ["ZooKeeperCoordinator", "connect"]

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_SECONDS = 30.0
_CONNECT_WAIT_SECONDS = 5.0


def connect(settings: Settings, *, wait: float | None = None) -> KazooClient:
    """A kazoo client for ``settings.zookeeper_hosts`` that retries connecting forever.

    With ``wait``, block up to that long for the first connection (raises
    `CoordinationUnavailableError` after stopping the client if it does not come).
    """
    auth_data, default_acl = client_security(settings)
    client = KazooClient(
        hosts=settings.zookeeper_hosts,
        timeout=settings.zookeeper_session_timeout_seconds,
        auth_data=auth_data,
        default_acl=default_acl,
        connection_retry={"max_tries": -1, "delay": 0.2, "max_delay": 1.0},
        command_retry={"max_tries": 3, "delay": 0.1, "max_delay": 1.0},
    )
    if wait is None:
        client.start_async()
        return client
    try:
        client.start(timeout=wait)
    except KazooTimeoutError:
        raise CoordinationUnavailableError("connect", "unreachable") from None
    return client


class ZooKeeperCoordinator(Coordinator):
    """One manager replica's view of the ensemble."""

    enabled = True

    def __init__(
        self,
        settings: Settings,
        *,
        client: KazooClient | None = None,
        identifier: str | None = None,
    ) -> None:
        self._settings = settings
        self.paths = Paths(settings.zookeeper_root.rstrip("/") or "/rayline")
        self.identifier = identifier or new_member_id(settings.api_port)
        self.client = client or connect(settings)
        self.config = SharedConfigApplier(settings)
        self._state = "connecting"
        self._since = time.monotonic()
        self._leader = False
        self._leader_id: str | None = None
        self._stopping = threading.Event()
        self._sync_wanted = threading.Event()
        self._connected = threading.Event()
        self._watching_config = False
        self._member_session: int | None = None  # session that holds our member node
        self._snapshot: Callable[[], RegistrySnapshot] | None = None
        self._election: Any = None
        self._threads: list[threading.Thread] = []
        self.client.add_listener(self._on_state)
        if self.client.connected:
            self._on_state(KazooState.CONNECTED)

    # ------------------------------------------------------------ life
    def start(self, snapshot: Callable[[], RegistrySnapshot]) -> None:
        """Start the registry worker; wait briefly for the first connection."""
        self._snapshot = snapshot
        if not self._connected.wait(_CONNECT_WAIT_SECONDS):
            log.warning(
                "coordination degraded: ZooKeeper at %s does not answer yet; serving reads, "
                "not leading, refusing locked writes until it does",
                self._settings.zookeeper_hosts,
            )
        else:
            with contextlib.suppress(KazooException, KazooTimeoutError):
                self._ensure_member()  # else the registry thread does it
        self._spawn("coordination-registry", self._registry_loop)

    def stop(self) -> None:
        """Leave the election (the next leader takes over at once) and close the session."""
        self._stopping.set()
        self._sync_wanted.set()
        if self._election is not None:
            self._election.cancel()
        for thread in self._threads:
            thread.join(timeout=35)
        try:
            self.client.stop()
            self.client.close()
        except KazooException:
            log.debug("closing the ZooKeeper client failed", exc_info=True)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------ connection
    def _on_state(self, state: str) -> None:
        # Runs on kazoo's event thread: record and signal, never block here.
        previous, self._state = self._state, str(state).lower()
        self._since = time.monotonic()
        if state == KazooState.CONNECTED:
            self._connected.set()
            self._sync_wanted.set()
            if previous in ("suspended", "lost"):
                log.warning("coordination restored: ZooKeeper connected again")
        elif self._stopping.is_set():
            self._connected.clear()
        else:
            self._connected.clear()
            log.warning(
                "coordination degraded: ZooKeeper connection %s; serving reads from the "
                "metadata store, leadership paused, locked writes refused",
                self._state,
            )

    @property
    def degraded(self) -> bool:
        """True while ZooKeeper is not connected."""
        return not self._connected.is_set()

    def status(self) -> dict[str, Any]:
        """Connection, leadership and the shared settings in force."""
        return {
            "mode": "zookeeper",
            "hosts": self._settings.zookeeper_hosts,
            "state": self._state,
            "state_for_seconds": round(time.monotonic() - self._since, 1),
            "degraded": self.degraded,
            "identifier": self.identifier,
            "session_id": self._session_id(),
            "leader": self._leader,
            "leader_identifier": self._leader_id,
            "shared_config": self.config.current.model_dump(exclude_none=True),
            "effective_config": self.config.effective(),
        }

    def _session_id(self) -> str | None:
        session = self.client.client_id
        return None if not session or self.degraded else f"{session[0]:#x}"

    # ------------------------------------------------------------ leadership
    def lead(self, on_elected: Callable[[], None], on_revoked: Callable[[], None]) -> None:
        """Campaign in the background for as long as this coordinator runs."""

        def campaign() -> None:
            while not self._stopping.is_set():
                if not self._connected.wait(0.2):
                    continue
                self._election = self.client.Election(self.paths.election, self.identifier)
                try:
                    self._election.run(self._hold_leadership, on_elected, on_revoked)
                except CancelledError:
                    return
                except (KazooException, KazooTimeoutError) as exc:
                    log.warning("leader election interrupted (%s); campaigning again", exc)
                self._release_stale(self._election.lock)

        self._spawn("coordination-election", campaign)

    def _hold_leadership(
        self, on_elected: Callable[[], None], on_revoked: Callable[[], None]
    ) -> None:
        self._leader_id = self.identifier
        log.info("elected leader (%s): starting the lifecycle manager", self.identifier)
        try:
            on_elected()
            self._leader = True  # reported once the lifecycle manager runs (reconciled)
            log.info("leading: lifecycle manager running")
            self._sync_wanted.set()
            # Lead while connected: a suspended connection may already have cost the
            # session on the server side, and with it the leadership.
            while not self._stopping.is_set() and self._connected.is_set():
                self._stopping.wait(0.2)
        finally:
            self._leader = False
            reason = "stopping" if self._stopping.is_set() else f"ZooKeeper {self._state}"
            log.warning("leadership ended (%s): stopping the lifecycle manager", reason)
            on_revoked()

    def _release_stale(self, lock: Any) -> None:
        """Delete our election node if releasing it failed while disconnected."""
        while lock.is_acquired and not self._stopping.is_set() and self._state != "lost":
            if self._connected.wait(0.2):
                try:
                    lock.release()
                except KazooException:
                    self._stopping.wait(0.2)

    # ------------------------------------------------------------ membership
    def _ensure_member(self) -> None:
        """Create our ephemeral member node once per session (a new session lost it)."""
        session = self.client.client_id[0] if self.client.client_id else None
        if session is None or session == self._member_session:
            return
        path = self.paths.member(self.identifier)
        body = _dump({"identifier": self.identifier, "api_port": self._settings.api_port})
        try:
            self.client.create(path, body, ephemeral=True, makepath=True)
        except NodeExistsError:
            stat = self.client.exists(path)
            if stat is not None and stat.ephemeralOwner != session:
                # Left by our previous session, which the server has not expired yet.
                with contextlib.suppress(NoNodeError):
                    self.client.delete(path)
                self.client.create(path, body, ephemeral=True, makepath=True)
        self._member_session = session

    def member_alive(self, identifier: str) -> bool:
        """True while the replica's member node exists (and when that cannot be told)."""
        if identifier == self.identifier:
            return True
        if self.degraded:
            return True  # unknown: leave its clusters alone (we do not lead now anyway)
        try:
            return self.client.exists(self.paths.member(identifier)) is not None
        except (KazooException, KazooTimeoutError):
            return True

    # ------------------------------------------------------------ locks
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the named lock on every replica; refuse at once while degraded."""
        if self.degraded:
            raise CoordinationUnavailableError(name, self._state)
        lock = self.client.Lock(self.paths.lock(name), self.identifier)
        try:
            # What we create under a lock (a cluster) names us as owner: be a member first.
            self._ensure_member()
            lock.acquire(timeout=_LOCK_TIMEOUT_SECONDS)
        except (LockTimeout, KazooException, KazooTimeoutError) as exc:
            raise CoordinationUnavailableError(name, self._state) from exc
        try:
            yield
        finally:
            try:
                lock.release()
            except KazooException:  # the session ended: the node went with it
                log.warning("could not release lock %s (ZooKeeper %s)", name, self._state)

    # ------------------------------------------------------------ registry
    def registry_changed(self) -> None:
        """Bring the registry in line soon (on the registry thread)."""
        self._sync_wanted.set()

    def _registry_loop(self) -> None:
        interval = self._settings.reaper_interval_seconds
        while not self._stopping.is_set():
            wanted = self._sync_wanted.wait(interval)
            self._sync_wanted.clear()
            if self._stopping.is_set() or not self._connected.is_set():
                continue
            try:
                self._ensure_member()
                self._watch_config()
                self._refresh_leader_id()
                if wanted or self._leader:
                    self.sync_registry()
            except (KazooException, KazooTimeoutError) as exc:
                log.warning("registry update failed (%s); retrying", exc)
                self._sync_wanted.set()
                self._stopping.wait(0.5)
            except Exception:  # the metadata store may be briefly unreachable too
                log.exception("registry update failed; retrying next interval")

    def _refresh_leader_id(self) -> None:
        contenders = self.client.Election(self.paths.election).contenders()
        self._leader_id = contenders[0] if contenders else None

    def sync_registry(self) -> None:
        """Create, update and delete ephemeral entries to match the metadata store."""
        if self._snapshot is None:
            return
        # List the znodes before reading the store: a node that exists now was created
        # after its record was committed, so the snapshot below holds that record. The
        # other order deletes an entry another replica registered meanwhile.
        existing = self._leaves(self.paths.clusters) | self._leaves(self.paths.services)
        snapshot = self._snapshot()
        desired: dict[str, bytes] = {}
        for cluster in snapshot.clusters:
            desired[self.paths.cluster(cluster.purpose, cluster.id)] = _dump(cluster.to_json())
        by_version: defaultdict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for service in snapshot.services:
            by_version[(service.model_name, service.model_version)].append(service.to_json())
        for (model, version), endpoints in by_version.items():
            endpoints.sort(key=lambda e: str(e["url"]))
            body = {"model_name": model, "model_version": version, "endpoints": endpoints}
            desired[self.paths.service(model, version)] = _dump(body)
        for path in existing - desired.keys():
            with contextlib.suppress(NoNodeError):
                self.client.delete(path)
        for path, data in desired.items():
            try:
                self.client.create(path, data, ephemeral=True, makepath=True)
            except NodeExistsError:
                current, _ = self.client.get(path)
                if current != data:
                    self.client.set(path, data)

    def _leaves(self, parent: str) -> set[str]:
        """Paths two levels below ``parent`` (``<group>/<name>``)."""
        leaves: set[str] = set()
        try:
            groups = self.client.get_children(parent)
        except NoNodeError:
            return leaves
        for group in groups:
            try:
                names = self.client.get_children(f"{parent}/{group}")
            except NoNodeError:
                continue
            leaves.update(f"{parent}/{group}/{name}" for name in names)
        return leaves

    # ------------------------------------------------------------ shared config
    def _watch_config(self) -> None:
        if self._watching_config:
            return
        self.client.ensure_path(self.paths.config)
        self.client.DataWatch(self.paths.config, self._on_config)
        self._watching_config = True

    def _on_config(self, data: bytes | None, _stat: ZnodeStat | None) -> None:
        try:
            config = decode(data)
        except ValueError as exc:  # keep the last good values
            log.error("shared config at %s is invalid, ignored: %s", self.paths.config, exc)
            return
        changed = self.config.apply(config)
        if changed:
            log.info("shared config applied without restart: %s", changed)


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True).encode()
