"""The Cluster Manager's core: cluster requests, state, quota and discovery.

The API routes call this class; it owns every transaction on the cluster tables
(the rows of pools and endpoints are written by `pool_store` and
`endpoint_store` inside them) and hands the slow work (starting and stopping
Ray) to the `Provisioner` threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from rayline.clusters import endpoint_store, pool_store, serving_homes
from rayline.clusters.backends.base import Capacity
from rayline.clusters.capacity import demand_of, live_demand, shortfall
from rayline.clusters.errors import (
    CapacityExceededError,
    ClusterNotFoundError,
    QuotaExceededError,
)
from rayline.clusters.pools import PoolShape, cold_start_reason, match, parse_pool_setting
from rayline.clusters.schemas import ClusterCreate, ServiceCreate
from rayline.config import Settings
from rayline.coordination import Coordinator, LocalCoordinator
from rayline.metadata.clusters import record_transition
from rayline.metadata.db import read_only_sessions
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.errors import ClusterNotFoundError as StoredClusterMissing
from rayline.metadata.errors import InvalidTransitionError
from rayline.metadata.models import Cluster, ClusterEvent, ServiceEndpoint

__all__ = ["LIVE_STATES", "ClusterService"]

log = logging.getLogger(__name__)

LIVE_STATES = (
    ClusterState.PENDING,
    ClusterState.PROVISIONING,
    ClusterState.READY,
    ClusterState.POOLED,
    ClusterState.UNHEALTHY,
)
# Quota and idempotency checks must not interleave between two requests (or two
# replicas on one Postgres): one advisory lock key for "create a cluster".
_CREATE_LOCK_KEY = 0x7261796C  # "rayl"


class ClusterService:
    """Create, read, delete and wait on clusters; register serving endpoints."""

    def __init__(self, *, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._read_sessions = read_only_sessions(sessions)
        self._settings = settings
        self._create_lock = threading.Lock()
        # Cross-replica locks; ManagerRuntime sets the real one.
        self.coordinator: Coordinator = LocalCoordinator()
        # Called after a state change or an endpoint change (Prometheus targets).
        self.change_listeners: list[Callable[[], None]] = []
        # Warm pools a request may adopt from, and who hears of an adoption or of
        # pooled clusters evicted (TERMINATING, to tear down) after it commits.
        self.pool_shapes: list[PoolShape] = parse_pool_setting(settings.pool)
        self.pool_listeners: list[Callable[[list[str]], None]] = []
        # What the backend can give all live clusters together (ManagerRuntime sets it).
        self.capacity: Callable[[], Capacity] | None = None
        self._backend_name = settings.cluster_backend

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it takes no lock (see `rayline.metadata.db`)."""
        with self._read_sessions.begin() as session:
            yield session

    # ------------------------------------------------------------ clusters
    def create(self, spec: ClusterCreate, *, backend: str) -> tuple[Cluster, bool]:
        """Adopt a fresh pooled cluster of the spec's shape, or record a new one in PENDING.

        A known request_id returns its cluster, and a serving request labelled
        with its model (`serving_homes.MODEL_LABEL`) that model's live serving
        cluster. A full quota, or too few resources left beside the live clusters,
        evicts warm pooled clusters before refusing: a waiting request beats a
        warm spare.

        Returns:
            The cluster (adopted: READY or PROVISIONING; new: PENDING, to provision)
            and whether this call created or adopted it (False for an existing one).

        Raises:
            QuotaExceededError: the live-cluster quota is reached.
            CapacityExceededError: the live clusters (warm spares evicted first)
                leave too few CPUs, memory or GPUs for this one.
        """
        spec = self._with_shared_defaults(spec)
        shape = match(spec, self.pool_shapes)
        evicted: list[str] = []
        with self.creating() as session:
            cluster, created = self._create_locked(session, spec, shape, backend, evicted)
            session.expunge(cluster)
        if created and (cluster.pool is not None or evicted):
            for listener in self.pool_listeners:
                listener(evicted)
        return cluster, created

    def _create_locked(
        self,
        session: Session,
        spec: ClusterCreate,
        shape: PoolShape | None,
        backend: str,
        evicted: list[str],
    ) -> tuple[Cluster, bool]:
        if spec.request_id is not None:
            existing = session.scalar(select(Cluster).where(Cluster.request_id == spec.request_id))
            if existing is not None:
                return existing, False
        home = serving_homes.find_home(session, spec)
        if home is not None:
            log.info("request %r: model's serving cluster %s (%s)", spec.name, home.id, home.state)
            return home, False
        if shape is not None:
            adopted = pool_store.adopt(session, shape, spec, owner=self.coordinator.identifier)
            if adopted is not None:
                return adopted, True
        live = self.count_live(session)
        quota = self._settings.max_live_clusters
        if live >= quota:
            victim = pool_store.evict_one(
                session,
                f"evicted from its pool: the live-cluster quota ({quota}) is full "
                f"and request {spec.name!r} needs the room",
            )
            if victim is None:
                raise QuotaExceededError(live=live, quota=quota)
            evicted.append(victim)
        while (problem := self.capacity_shortfall(session, spec)) is not None:
            victim = pool_store.evict_one(
                session, f"evicted from its pool: request {spec.name!r} needs its resources"
            )
            if victim is None:
                raise CapacityExceededError(problem)
            evicted.append(victim)
        reason = cold_start_reason(shape, configured=bool(self.pool_shapes))
        cluster = Cluster(
            name=spec.name,
            purpose=spec.purpose,
            state=ClusterState.PENDING,
            state_reason=reason,
            backend=backend,
            spec=spec.model_dump(mode="json"),
            request_id=spec.request_id,
            labels=dict(spec.labels),
            ttl_seconds=spec.ttl_seconds,
            idle_timeout_seconds=spec.idle_timeout_seconds,
            nodes=[],
            backend_handle={},
            owner=self.coordinator.identifier,  # We provision it
        )
        session.add(cluster)
        session.flush()
        session.add(
            ClusterEvent(
                cluster_id=cluster.id, from_state=None, to_state=ClusterState.PENDING, reason=reason
            )
        )
        return cluster, True

    def capacity_shortfall(self, session: Session, spec: ClusterCreate) -> str | None:
        """Why ``spec`` does not fit beside the live clusters now, or None."""
        if self.capacity is None:
            return None
        return shortfall(
            demand_of(spec),
            live_demand(session, LIVE_STATES),
            self.capacity(),
            cpu_overcommit=self._settings.cpu_overcommit,
            backend=self._backend_name,
        )

    @contextmanager
    def creating(self) -> Iterator[Session]:
        """A transaction holding the create locks: quota, idempotency and pool hand-over.

        The locks are this process's, the coordinator's (with several replicas) and,
        on Postgres, an advisory lock, so two creates never interleave anywhere.
        """
        with self._create_lock, self.coordinator.lock("cluster-quota"), self.session() as session:
            self._lock_creates(session)
            yield session

    def count_live(self, session: Session) -> int:
        """Live clusters, pooled ones included: what the quota counts."""
        live = session.scalar(
            select(func.count()).select_from(Cluster).where(Cluster.state.in_(LIVE_STATES))
        )
        return int(live or 0)

    def _with_shared_defaults(self, spec: ClusterCreate) -> ClusterCreate:
        """Fill TTL and idle timeout the request left unset."""
        defaults = {
            "ttl_seconds": self._settings.default_ttl_seconds,
            "idle_timeout_seconds": self._settings.default_idle_timeout_seconds,
        }
        update = {k: v for k, v in defaults.items() if v and k not in spec.model_fields_set}
        return spec.model_copy(update=update) if update else spec

    def _lock_creates(self, session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})

    def get(self, cluster_id: str) -> Cluster:
        """Return one cluster.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        with self.reading() as session:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None:
                raise ClusterNotFoundError(cluster_id)
            session.expunge(cluster)
            return cluster

    def list_clusters(
        self,
        *,
        purpose: ClusterPurpose | None = None,
        state: ClusterState | None = None,
        labels: dict[str, str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Cluster]:
        """Return one page of clusters, newest first, filtered by purpose, state and labels."""
        query = select(Cluster).order_by(Cluster.created_at.desc(), Cluster.id)
        if purpose is not None:
            query = query.where(Cluster.purpose == purpose)
        if state is not None:
            query = query.where(Cluster.state == state)
        if not labels:
            query = query.limit(limit).offset(offset)
        with self.reading() as session:
            rows = list(session.scalars(query))
            session.expunge_all()
        if labels:
            # Label filters run in Python: JSON containment differs between SQLite
            # and Postgres, and the live set is small.
            rows = [r for r in rows if all(r.labels.get(k) == v for k, v in labels.items())]
            rows = rows[offset : offset + limit]
        return rows

    def events(self, cluster_id: str, *, limit: int = 1000, offset: int = 0) -> list[ClusterEvent]:
        """Return the cluster's state transitions, oldest first (one page of them)."""
        with self.reading() as session:
            if session.get(Cluster, cluster_id) is None:
                raise ClusterNotFoundError(cluster_id)
            rows = list(
                session.scalars(
                    select(ClusterEvent)
                    .where(ClusterEvent.cluster_id == cluster_id)
                    .order_by(ClusterEvent.id)
                    .limit(limit)
                    .offset(offset)
                )
            )
            session.expunge_all()
            return rows

    def request_termination(self, cluster_id: str, reason: str) -> tuple[Cluster, bool]:
        """Move a live cluster to TERMINATING; idempotent for clusters already ending.

        Returns:
            The cluster and whether this call started its termination.
        """
        # The caller tears it down, so it becomes the owner.
        started = self.move(
            cluster_id, ClusterState.TERMINATING, reason, owner=self.coordinator.identifier
        )
        return self.get(cluster_id), started

    def wait_for(self, cluster_id: str, state: ClusterState, timeout: float) -> Cluster:
        """Poll (holding this thread) until the cluster is in ``state``, ends, or time is up."""
        deadline = time.monotonic() + timeout
        while True:
            cluster = self.get(cluster_id)
            current = ClusterState(cluster.state)
            if current == state or current.is_terminal() or time.monotonic() >= deadline:
                return cluster
            time.sleep(0.1)

    def update(self, cluster_id: str, **fields: Any) -> None:
        """Set plain columns (addresses, handle, nodes, activity) on a cluster.

        Storing a backend handle notifies the change listeners, so what they derive
        from it (the cluster's Prometheus targets) exists before the cluster can be
        seen READY: a client that sees READY can count on being scraped.
        """
        with self.session() as session:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None:
                raise ClusterNotFoundError(cluster_id)
            for name, value in fields.items():
                setattr(cluster, name, value)
        if "backend_handle" in fields:
            self._changed()

    def move(self, cluster_id: str, to_state: ClusterState, reason: str, **fields: Any) -> bool:
        """Transition a cluster and set columns in the same transaction.

        Returns False (and changes nothing) when the lifecycle forbids the move,
        e.g. the reaper marking unhealthy a cluster a user deleted a moment ago.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        with self.session() as session:
            try:
                cluster = record_transition(session, cluster_id, to_state, reason)
            except InvalidTransitionError:
                return False
            except StoredClusterMissing:
                raise ClusterNotFoundError(cluster_id) from None
            for name, value in fields.items():
                setattr(cluster, name, value)
        log.info("cluster %s -> %s (%s)", cluster_id, to_state, reason)
        self._changed()
        return True

    def _changed(self) -> None:
        for listener in self.change_listeners:
            listener()

    def counts_by_state(self) -> dict[tuple[str, str], int]:
        """Return the number of clusters per (state, purpose), for metrics."""
        with self.reading() as session:
            rows = session.execute(
                select(Cluster.state, Cluster.purpose, func.count()).group_by(
                    Cluster.state, Cluster.purpose
                )
            )
            return {(str(s), str(p)): n for s, p, n in rows}

    # ------------------------------------------------------------ services
    def register_service(self, spec: ServiceCreate) -> ServiceEndpoint:
        """Register (or replace, by URL) a serving endpoint, one per model at a time.

        Raises:
            UnknownModelVersionError: the model version is not registered.
            ClusterNotFoundError: the backing cluster does not exist.
        """
        with self.coordinator.lock(f"model-{spec.model_name}"), self.session() as session:
            endpoint = endpoint_store.register(session, spec)
            session.expunge(endpoint)
        self._changed()
        return endpoint

    def list_services(
        self, model: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[ServiceEndpoint]:
        """Return registered endpoints, optionally of one model, newest version first."""
        with self.reading() as session:
            rows = endpoint_store.list_endpoints(session, model, limit=limit, offset=offset)
            session.expunge_all()
            return rows

    def deregister_service(self, service_id: int) -> bool:
        """Remove an endpoint; returns False when it was already gone."""
        with self.session() as session:
            removed = endpoint_store.deregister(session, service_id)
        if removed:
            self._changed()
        return removed

    def clusters_backing_services(self) -> set[str]:
        """Ids of clusters that back a registered, not-unhealthy endpoint."""
        with self.reading() as session:
            return endpoint_store.backing_cluster_ids(session)

    def serving_use(self) -> serving_homes.ServingUse:
        """What serving clusters back (deployments, endpoints), for the serving reaper."""
        with self.reading() as session:
            return serving_homes.serving_use(session)
