"""The pool keeper: refill warm pools in the background, drain them at shutdown.

On a small machine a refill competes with the request it replaces, so the keeper
starts one pooled cluster at a time, only while no request's cluster is still
starting, and only ``pool_refill_delay_seconds`` after the last adoption (the
adopting workflow's first job goes first). With several manager replicas only
the leader keeps the pools (it also runs the lifecycle manager).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import wait

from rayline.clusters import pool_store
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.metadata.enums import ClusterState

__all__ = ["PoolKeeper"]

log = logging.getLogger(__name__)
_POLL_SECONDS = 1.0
_DRAIN_TIMEOUT_SECONDS = 120.0
_BACKOFF = 30.0  # seconds after a pooled cluster failed to start


class PoolKeeper:
    """Keeps each configured pool at its size with fresh clusters."""

    def __init__(
        self,
        *,
        service: ClusterService,
        provisioner: Provisioner,
        backend_name: str,
        settings: Settings,
    ) -> None:
        self._service = service
        self._provisioner = provisioner
        self._backend_name = backend_name
        self._delay = settings.pool_refill_delay_seconds
        self._quota = settings.max_live_clusters
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_adoption = float("-inf")
        service.pool_listeners.append(self._on_pool_change)

    @property
    def shapes(self) -> list[str]:
        """Names of the pools kept."""
        return [shape.name for shape in self._service.pool_shapes]

    def start(self) -> None:
        """Start refilling in the background (no-op without pools); again after `stop`."""
        if not self._service.pool_shapes:
            return
        if self._thread is not None:
            self._thread.join()  # a stopped loop ends after the refill it was waiting for
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pool-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refilling; takes no lock (it runs when leadership is lost, too).

        A refill that was recording its cluster commits it before a later drain
        reads (both hold the create locks); one already starting goes on in the
        provisioner, and a drain ends it.
        """
        self._stop.set()
        self._wake.set()

    def drain(self, *, why: str = "manager shutting down", every_owner: bool = False) -> list[str]:
        """Stop refilling and tear down fresh pooled clusters (this replica's); wait for it.

        Args:
            why: the reason recorded on each drained cluster.
            every_owner: drain the other replicas' spares too (`rayline down`).

        Returns:
            The ids of the clusters drained.
        """
        self.stop()
        if not self._service.pool_shapes:
            return []  # no pools: shut down exactly as a manager without them does
        owner = None if every_owner else self._service.coordinator.identifier
        with self._service.creating() as session:
            ids = pool_store.drain(session, f"pool drained: {why}", owner=owner)
        futures = [self._provisioner.terminate(cluster_id) for cluster_id in ids]
        wait(futures, timeout=_DRAIN_TIMEOUT_SECONDS)
        if ids:
            log.info("drained %d pooled cluster(s): %s", len(ids), ", ".join(ids))
        return ids

    def _on_pool_change(self, evicted: list[str]) -> None:
        """After an adoption or eviction (committed): tear down the evicted, refill later."""
        for cluster_id in evicted:
            self._provisioner.terminate(cluster_id)
        self._last_adoption = time.monotonic()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                started = self.fill_once()
            except Exception:  # keep the pools alive; the next pass tries again
                log.exception("pool refill failed; retrying")
                started = None
            if started is None:
                self._wake.wait(_POLL_SECONDS)
                self._wake.clear()
            elif self._service.get(started).state == ClusterState.FAILED:
                # e.g. a shape the backend can never give: do not spin on it
                log.warning("pool cluster %s failed; next refill in %gs", started, _BACKOFF)
                self._stop.wait(_BACKOFF)

    def fill_once(self) -> str | None:
        """Start (and wait for) one pooled cluster where a pool is short.

        Returns:
            The id of the cluster started, or None when nothing was due: every
            pool full, a request's cluster still starting, an adoption too
            recent, the live-cluster quota full, or too few resources left.
        """
        if time.monotonic() - self._last_adoption < self._delay:
            return None
        shapes = self._service.pool_shapes
        with self._service.reading() as session:
            if pool_store.starting_for_requests(session):
                return None  # real requests first
            fresh = pool_store.count_fresh(session, shapes)
        short = next((s for s in shapes if fresh[s.name] < s.size), None)
        if short is None:
            return None
        identifier = self._service.coordinator.identifier
        with self._service.creating() as session:
            if self._stop.is_set():
                return None  # stopped (and maybe drained) meanwhile
            if self._service.count_live(session) >= self._quota:
                return None  # (a request that finds the quota full evicts a warm spare)
            if self._service.capacity_shortfall(session, short.request()) is not None:
                return None  # a spare never takes resources that live clusters hold
            cluster = pool_store.new_pooled(
                session, short, backend=self._backend_name, owner=identifier
            )
            cluster_id = cluster.id
        log.info(
            "pool %s: starting %s (%d/%d fresh)",
            short.name,
            cluster_id,
            fresh[short.name],
            short.size,
        )
        self._provisioner.provision(cluster_id).result()  # one at a time
        return cluster_id
