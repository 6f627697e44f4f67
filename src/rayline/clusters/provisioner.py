"""Background work of the Cluster Manager: start clusters, wait until READY, tear down.

API requests return at once (202); these threads do the slow part and record every
state change through `ClusterService`. Provisioning and teardown of one cluster are
serialised by a per-cluster lock, so a delete that arrives while Ray is still
starting always sees (and kills) every process that was started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rayline.clusters.backends.base import BackendError, ClusterBackend, ClusterRequest
from rayline.clusters.metrics import ManagerMetrics
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster
from rayline.metadata.types import utcnow

__all__ = ["Provisioner", "capacity_problem", "to_backend_request"]

log = logging.getLogger(__name__)
_PROBE_INTERVAL_SECONDS = 0.2


def to_backend_request(cluster: Cluster) -> ClusterRequest:
    """Build the backend's view of a stored cluster request."""
    spec = ClusterCreate.model_validate(cluster.spec)
    return ClusterRequest.from_spec(cluster_id=cluster.id, spec=spec)


def capacity_problem(
    spec: ClusterCreate, backend: ClusterBackend, settings: Settings
) -> str | None:
    """Say why the backend can never give these resources, or None when it can."""
    capacity = backend.capacity()
    nodes = [spec.head] + [spec.worker] * spec.worker_count
    cpus = sum(n.cpus for n in nodes)
    gpus = sum(n.gpus for n in nodes)
    memory_mb = sum(n.memory_mb or 0 for n in nodes)
    if capacity.max_cpus is not None and cpus > capacity.max_cpus * settings.cpu_overcommit:
        return (
            f"asks for {cpus:g} CPUs but backend {backend.name} can give at most "
            f"{capacity.max_cpus * settings.cpu_overcommit:g} ({capacity.max_cpus:g} cores x "
            f"overcommit {settings.cpu_overcommit:g}); ask for fewer CPUs or workers"
        )
    if capacity.max_gpus is not None and gpus > capacity.max_gpus:
        return (
            f"asks for {gpus} GPUs but backend {backend.name} has {capacity.max_gpus}; "
            "set gpus to 0 or use a backend with GPUs"
        )
    if capacity.max_memory_mb is not None and memory_mb > capacity.max_memory_mb:
        return (
            f"asks for {memory_mb} MiB of memory but backend {backend.name} has "
            f"{capacity.max_memory_mb} MiB; ask for less memory"
        )
    return None


class Provisioner:
    """Runs provisioning and teardown of clusters on a small thread pool."""

    def __init__(
        self,
        *,
        service: ClusterService,
        backend: ClusterBackend,
        settings: Settings,
        metrics: ManagerMetrics,
        max_workers: int = 8,
    ) -> None:
        self._service = service
        self._backend = backend
        self._settings = settings
        self._metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="provision")
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._stopping = threading.Event()

    def shutdown(self) -> None:
        """Stop accepting work and wait for running tasks (clusters keep running)."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def provision(self, cluster_id: str) -> Future[None]:
        """Start provisioning a PENDING cluster in the background."""
        return self._pool.submit(self._guarded, self._provision, cluster_id)

    def resume(self, cluster_id: str) -> Future[None]:
        """Keep waiting for a PROVISIONING cluster adopted after a restart."""
        return self._pool.submit(self._guarded, self._await_ready, cluster_id)

    def terminate(self, cluster_id: str) -> Future[None]:
        """Tear down a TERMINATING cluster in the background."""
        return self._pool.submit(self._guarded, self._terminate, cluster_id)

    def fail(self, cluster_id: str, reason: str) -> Future[None]:
        """Mark a cluster FAILED and release whatever the backend still holds."""
        return self._pool.submit(self._guarded, self._fail, cluster_id, reason)

    # ------------------------------------------------------------ workers
    def _guarded(self, work: Any, cluster_id: str, *args: Any) -> None:
        try:
            work(cluster_id, *args)
        except Exception:  # a background thread has no caller to raise to
            log.exception("cluster %s: background %s failed", cluster_id, work.__name__)
            self._fail(cluster_id, f"internal error during {work.__name__.strip('_')}")

    def _provision(self, cluster_id: str) -> None:
        cluster = self._service.get(cluster_id)
        spec = ClusterCreate.model_validate(cluster.spec)
        problem = capacity_problem(spec, self._backend, self._settings)
        if problem is not None:
            self._service.move(cluster_id, ClusterState.FAILED, f"unsatisfiable: {problem}")
            return
        nodes = 1 + spec.worker_count
        with self._locks[cluster_id]:
            reason = f"starting {nodes} Ray node(s) on the {self._backend.name} backend"
            if cluster.pool is not None:
                reason += f" for warm pool '{cluster.pool}'"
            if not self._service.move(cluster_id, ClusterState.PROVISIONING, reason):
                return  # deleted before we started
            try:
                handle = self._backend.provision(to_backend_request(cluster))
            except BackendError as exc:
                self._service.move(cluster_id, ClusterState.FAILED, f"provisioning failed: {exc}")
                return
            self._service.update(
                cluster_id,
                backend_handle=handle.to_json(),
                head_address=handle.head_address,
                dashboard_url=handle.dashboard_url,
                job_api_url=handle.job_api_url,
            )
            if self._service.get(cluster_id).state != ClusterState.PROVISIONING:
                # Deleted meanwhile through another replica, whose teardown had no
                # handle yet: stop what this replica just started.
                self._release(cluster_id, handle_data=handle.to_json())
                return
        self._await_ready(cluster_id)

    def _await_ready(self, cluster_id: str) -> None:
        cluster = self._service.get(cluster_id)
        handle = self._backend.load_handle(cluster.backend_handle)
        expected = 1 + int(cluster.spec.get("worker_count", 0))
        deadline = cluster.created_at.timestamp() + self._settings.provision_timeout_seconds
        while not self._stopping.is_set():
            if self._service.get(cluster_id).state != ClusterState.PROVISIONING:
                return  # deleted meanwhile: the teardown task owns it now
            report = self._backend.probe(handle, expected_nodes=expected)
            if report.ready:
                reason = (
                    f"GCS healthy, {report.alive_nodes}/{expected} nodes alive, job API answering"
                )
                # A pool's cluster waits as POOLED, unless a request adopted it while
                # it started (then `record_transition` makes it READY).
                target = ClusterState.POOLED if cluster.pool is not None else ClusterState.READY
                # Observed before READY is stored, so whoever sees READY finds it counted.
                self._metrics.provisioning_seconds.labels(
                    purpose=str(cluster.purpose), backend=self._backend.name
                ).observe(time.time() - cluster.created_at.timestamp())
                self._service.move(
                    cluster_id, target, reason, nodes=report.nodes, last_active_at=utcnow()
                )
                return
            if report.dead:
                self._fail(cluster_id, f"Ray exited while starting: {report.reason}")
                return
            if time.time() > deadline:
                limit = self._settings.provision_timeout_seconds
                self._fail(cluster_id, f"not READY after {limit:g}s: {report.summary}")
                return
            time.sleep(_PROBE_INTERVAL_SECONDS)

    def _release(self, cluster_id: str, handle_data: Any) -> None:
        """Stop the cluster's resources: by its handle, or by its id when none was stored.

        Raises:
            BackendError: something survived.
        """
        if handle_data:
            self._backend.terminate(self._backend.load_handle(handle_data))
        else:
            self._backend.release_unrecorded(cluster_id)

    def _terminate(self, cluster_id: str) -> None:
        with self._locks[cluster_id]:
            cluster = self._service.get(cluster_id)
            try:
                self._release(cluster_id, cluster.backend_handle)
            except BackendError as exc:
                self._service.move(cluster_id, ClusterState.FAILED, f"teardown failed: {exc}")
                return
            self._service.move(
                cluster_id, ClusterState.TERMINATED, "every Ray process stopped, resources released"
            )

    def _fail(self, cluster_id: str, reason: str) -> None:
        # Release first: whoever sees FAILED may rely on nothing of it being left.
        with self._locks[cluster_id]:
            cluster = self._service.get(cluster_id)
            try:
                self._release(cluster_id, cluster.backend_handle)
            except BackendError as exc:
                log.exception("cluster %s: cleanup after failure did not finish", cluster_id)
                reason = f"{reason}; cleanup did not finish: {exc}"
            self._service.move(cluster_id, ClusterState.FAILED, reason)
