"""The lifecycle manager: health checks, TTL and idle reaping, restart reconciliation.

One background loop per manager. Each pass probes every READY or UNHEALTHY
cluster, moves it between READY and UNHEALTHY, fails the ones whose processes
died (and cleans them), and reaps clusters past their TTL or idle timeout, except
a serving cluster that still backs a registered endpoint. A serving cluster
that backs no active deployment, endpoint or job for ``serving_idle_seconds``
is reaped too (`rayline.clusters.serving_homes`), so no retrain leaves one behind.

With several replicas (coordination) only the leader runs it. A cluster
records its ``owner``, the replica provisioning or terminating it: reconciliation
leaves a cluster to a live owner, and the leader takes over the clusters of an
owner that is gone (on election, and on every pass after that).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from rayline.clusters import serving_homes
from rayline.clusters.backends.base import ClusterBackend
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.provisioner import Provisioner
from rayline.clusters.service import LIVE_STATES, ClusterService
from rayline.config import Settings
from rayline.coordination import Coordinator
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster
from rayline.metadata.types import utcnow

__all__ = ["LifecycleManager"]

log = logging.getLogger(__name__)

# States in which the owner's provisioner is working on it.
_IN_PROGRESS = (ClusterState.PENDING, ClusterState.PROVISIONING, ClusterState.TERMINATING)


class LifecycleManager:
    """Watches live clusters and ends the ones that are dead, expired or idle."""

    def __init__(
        self,
        *,
        service: ClusterService,
        provisioner: Provisioner,
        backend: ClusterBackend,
        settings: Settings,
        metrics: ManagerMetrics,
    ) -> None:
        self._service = service
        self._provisioner = provisioner
        self._backend = backend
        self._settings = settings
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._missed_probes: dict[str, int] = {}  # READY cluster id -> failed probes in a row

    # ------------------------------------------------------------ loop
    def start(self) -> None:
        """Start the background loop (reconciles once first); again after a `stop`."""
        self._stop.clear()  # Leadership may come back
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="lifecycle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop; clusters keep running and are re-adopted on the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.reaper_interval_seconds):
            try:
                self.run_once()
            except Exception:  # keep the loop alive; the failure is counted and logged
                self._metrics.reaper_errors.inc()
                log.exception("lifecycle pass failed; retrying next interval")

    def run_once(self) -> None:
        """One pass: health, expiry, then the per-state gauge."""
        backing = self._service.clusters_backing_services()
        use = self._service.serving_use()
        now = utcnow()
        # Snapshot first: a cluster marked UNHEALTHY in this pass waits for the next.
        watched = [
            cluster
            for state in (ClusterState.READY, ClusterState.UNHEALTHY, ClusterState.POOLED)
            for cluster in self._service.list_clusters(state=state)
        ]
        for cluster in watched:
            state = self._check_health(cluster, now)
            # A pooled cluster waits for its request: no TTL or idle timeout runs yet.
            if state is not None and state != ClusterState.POOLED:
                self._check_expiry(cluster, state, backing, now)
                if state == ClusterState.READY and cluster.id not in backing:
                    self._check_serving_use(cluster, use, now)
        watched_ids = {cluster.id for cluster in watched}
        for cluster_id in self._missed_probes.keys() - watched_ids:
            del self._missed_probes[cluster_id]  # ended or taken elsewhere
        self._take_over_orphans()
        self._publish_counts()

    def _publish_counts(self) -> None:
        self._metrics.clusters.clear()
        for (state, purpose), count in self._service.counts_by_state().items():
            self._metrics.clusters.labels(state=state, purpose=purpose).set(count)

    # ------------------------------------------------------------ health
    def _check_health(self, cluster: Cluster, now: datetime) -> ClusterState | None:
        """Probe one cluster; returns its state afterwards, None once it has failed."""
        handle = self._backend.load_handle(cluster.backend_handle)
        expected = 1 + int(cluster.spec.get("worker_count", 0))
        report = self._backend.probe(handle, expected_nodes=expected)
        state = ClusterState(cluster.state)
        if state == ClusterState.POOLED and not report.ready:
            missed = self._missed_probes.get(cluster.id, 0) + 1
            self._missed_probes[cluster.id] = missed
            if report.dead or missed >= self._settings.unhealthy_after_missed_probes:
                # Nobody uses a spare: end it, and the pool keeper starts a fresh one.
                self._missed_probes.pop(cluster.id, None)
                self._provisioner.fail(cluster.id, f"pooled cluster unhealthy: {report.reason}")
                self._count("failed")
                return None
            return state
        if report.ready:
            self._missed_probes.pop(cluster.id, None)
            if state == ClusterState.UNHEALTHY:
                self._service.move(cluster.id, ClusterState.READY, "recovered: " + report.summary)
                self._count("recovered")
                state = ClusterState.READY
            self._service.update(cluster.id, nodes=report.nodes)
            return state
        if state == ClusterState.READY:
            missed = self._missed_probes.get(cluster.id, 0) + 1
            self._missed_probes[cluster.id] = missed
            if not report.dead and missed < self._settings.unhealthy_after_missed_probes:
                log.info("cluster %s: probe %d missed (%s)", cluster.id, missed, report.reason)
                return state
            what = "processes died" if report.dead else f"{missed} health checks failed"
            self._service.move(cluster.id, ClusterState.UNHEALTHY, f"{what}: {report.reason}")
            self._count("unhealthy")
            return ClusterState.UNHEALTHY
        unhealthy_for = (now - cluster.updated_at).total_seconds()
        if report.dead or unhealthy_for >= self._settings.unhealthy_grace_seconds:
            reason = "processes died" if report.dead else f"unhealthy for {unhealthy_for:.0f}s"
            self._missed_probes.pop(cluster.id, None)
            self._provisioner.fail(cluster.id, f"{reason}: {report.reason}")
            self._count("failed")
            return None
        return state

    # ------------------------------------------------------------ expiry
    def _check_expiry(
        self, cluster: Cluster, state: ClusterState, backing: set[str], now: datetime
    ) -> None:
        if cluster.id in backing:
            return  # never reap a cluster that still serves a registered endpoint
        # An adopted cluster's life starts when its request adopted it.
        age = (now - (cluster.adopted_at or cluster.created_at)).total_seconds()
        if cluster.ttl_seconds is not None and age >= cluster.ttl_seconds:
            self._reap(cluster, f"TTL of {cluster.ttl_seconds}s expired", "ttl")
            return
        if cluster.idle_timeout_seconds is None or state != ClusterState.READY:
            return  # (the state after this pass's probe: an UNHEALTHY cluster is not idle)
        activity = self._backend.activity(self._backend.load_handle(cluster.backend_handle))
        if activity.busy:
            self._service.update(cluster.id, last_active_at=now)
            return
        last_active = cluster.last_active_at or cluster.ready_at or cluster.created_at
        idle_for = (now - last_active).total_seconds()
        if idle_for >= cluster.idle_timeout_seconds:
            self._reap(
                cluster,
                f"idle for {idle_for:.0f}s (no running Ray job, no Serve app; "
                f"timeout {cluster.idle_timeout_seconds}s)",
                "idle",
            )

    def _check_serving_use(
        self, cluster: Cluster, use: serving_homes.ServingUse, now: datetime
    ) -> None:
        """Reap a READY serving cluster that has backed nothing for too long."""
        limit = self._settings.serving_idle_seconds
        if serving_homes.serving_idle_reason(cluster, use, now=now, limit_seconds=limit) is None:
            return  # the records keep it: no call to the cluster needed
        activity = self._backend.activity(self._backend.load_handle(cluster.backend_handle))
        reason = serving_homes.serving_idle_reason(
            cluster, use, now=now, limit_seconds=limit, activity=activity
        )
        if reason is None:  # a job runs there: its idle time starts again
            self._service.update(cluster.id, last_active_at=now)
            return
        self._reap(cluster, reason, "serving_idle")

    def _reap(self, cluster: Cluster, reason: str, action: str) -> None:
        _, started = self._service.request_termination(cluster.id, reason)
        if started:
            self._provisioner.terminate(cluster.id)
            self._count(action)

    def _count(self, action: str) -> None:
        self._metrics.reaper_actions.labels(action=action).inc()

    # ------------------------------------------------------------ restart
    def reconcile(self) -> None:
        """After a (re)start: adopt live clusters, finish interrupted work, clean the lost.

        A cluster another live replica is provisioning or
        terminating is left to it (see `_left_to_owner`); the rest are taken over.
        """
        for cluster in self._service.list_clusters(limit=100_000):
            if ClusterState(cluster.state).is_terminal():
                continue
            if self._left_to_owner(cluster):
                log.info(
                    "cluster %s: %s by live replica %s, left to it",
                    cluster.id,
                    cluster.state,
                    cluster.owner,
                )
                continue
            self._take_over(cluster, "after manager restart")

    # ------------------------------------------------------------ ownership
    @property
    def _coordinator(self) -> Coordinator:
        return self._service.coordinator

    def _left_to_owner(self, cluster: Cluster) -> bool:
        """Whether a live replica is still working on the cluster: then leave it alone.

        Another replica counts while it is a member (single manager: never); this
        one only for the work its own provisioner threads are doing (leadership can
        come back to a replica that never stopped).
        """
        owner = cluster.owner
        if owner is None:
            return False
        if owner == self._coordinator.identifier:
            return ClusterState(cluster.state) in _IN_PROGRESS
        return self._coordinator.member_alive(owner)

    def _take_over_orphans(self) -> None:
        """Take over the clusters whose owner replica died since the last pass."""
        if not self._coordinator.enabled:
            return  # alone, nothing is orphaned after the start-up reconciliation
        alive: dict[str, bool] = {}  # one ZooKeeper read per owner and pass
        for state in (*LIVE_STATES, ClusterState.TERMINATING):
            for cluster in self._service.list_clusters(state=state, limit=100_000):
                owner = cluster.owner
                if owner is None:
                    continue
                if owner not in alive:
                    alive[owner] = self._coordinator.member_alive(owner)
                if not alive[owner]:
                    log.warning(
                        "cluster %s: its owner %s is gone; taking it over in %s",
                        cluster.id,
                        owner,
                        state,
                    )
                    self._take_over(cluster, f"from replica {owner}, which is gone")

    def _take_over(self, cluster: Cluster, why: str) -> None:
        """Become the cluster's owner and finish what its owner was doing."""
        self._service.update(cluster.id, owner=self._coordinator.identifier)
        state = ClusterState(cluster.state)
        if state == ClusterState.TERMINATING:
            self._provisioner.terminate(cluster.id)
        elif state == ClusterState.PENDING:
            self._provisioner.provision(cluster.id)
        else:  # PROVISIONING, READY, UNHEALTHY
            self._adopt(cluster, state, why)

    def _adopt(self, cluster: Cluster, state: ClusterState, why: str) -> None:
        handle = (
            self._backend.load_handle(cluster.backend_handle) if cluster.backend_handle else None
        )
        if handle is not None and self._backend.adopt(handle):
            log.info("cluster %s: re-adopted in %s %s", cluster.id, state, why)
            self._service.update(cluster.id, state_reason=f"re-adopted {why} ({state})")
            self._count("adopted")
            if state == ClusterState.PROVISIONING:
                self._provisioner.resume(cluster.id)
            return
        self._provisioner.fail(cluster.id, f"lost: its processes were gone {why}")
        self._count("lost")
