"""The local backend: Ray clusters as ``ray start --block`` processes on this host.

Each node is one ``ray start --block`` started in its own session (so its own
process group) with every port taken from a leased block, its own resource
limits, and the cluster's private Ray temp dir. Worker nodes of a cluster share
the head's temp dir and session, as in Ray's own ``ray.cluster_utils.Cluster``.
All node processes start at once and ``provision`` returns immediately, but each
launcher runs Ray only while holding one of a few host-wide start slots (one per
two cores, shared by every cluster under the same ``cluster_state_dir``), workers
only once their head is alive, and a node that fails while starting is started
again (see ``_ray_start.py``): Ray's startup timeouts are short and fixed.
Node logs (the ``ray start`` output) are kept under ``cluster_state_dir`` after
teardown; the temp dir (Ray's session, sockets and logs) is removed. Each cluster
runs with Ray's token auth on; its token lives in a mode-600 file beside the logs
(`auth_token_path`) until teardown.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from rayline.clusters.backends.base import (
    Activity,
    Capacity,
    ClusterBackend,
    ClusterHandle,
    ClusterRequest,
    HealthReport,
)
from rayline.clusters.backends.dashboard import DashboardClient
from rayline.clusters.backends.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidHandleError,
    ProvisionError,
)
from rayline.clusters.backends.local_handle import LocalHandleData, LocalNode, host_port
from rayline.clusters.backends.local_nodes import NodeProcesses, remove_tree
from rayline.clusters.backends.ports import PortAllocator
from rayline.clusters.backends.processes import find_marked, is_running, kill_processes
from rayline.clusters.backends.ray_nodes import (
    TEMP_DIR_ENV,
    PortPlan,
    head_command,
    plan_ports,
    ports_needed,
    ray_environment,
    resource_flags,
    worker_command,
)
from rayline.clusters.ray_auth import (
    TOKEN_FILE_NAME,
    remove_token,
    write_new_token,
)
from rayline.config import Settings
from rayline.listeners import check_ray_listener
from rayline.private_dirs import UnsafeDirectoryError, ensure_private_dir, named_temp_dir

__all__ = ["LocalBackend", "LocalHandleData", "LocalNode"]

log = logging.getLogger(__name__)

# Ray puts sockets at <temp>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store.N,
# about 70 bytes below the temp dir, and AF_UNIX paths stop at 107 bytes.
_MAX_TEMP_DIR_LEN = 36
_PROBE_TIMEOUT = 3.0
# The dashboard connects to Ray on the first Serve request: give it time.
_SERVE_TIMEOUT = 10.0


class LocalBackend(ClusterBackend):
    """Ray clusters made of local processes; see the module docstring."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        check_ray_listener(settings)  # production keeps Ray's unprotected APIs on loopback
        self._ip = settings.ray_bind_address
        # Per user and unguessable by default: Ray's sockets and session files live there.
        self._temp_base = settings.ray_temp_base or named_temp_dir(
            settings.home / "ray-temp-base", prefix="rl-"
        )
        self._state_dir = settings.cluster_state_dir
        self._python = sys.executable
        self._ports = PortAllocator(
            self._state_dir,
            start=settings.local_port_range_start,
            end=settings.local_port_range_end,
            host=self._ip,
        )
        self._nodes = NodeProcesses(stop_grace_seconds=settings.local_stop_grace_seconds)
        if len(str(self.temp_dir_for("x"))) > _MAX_TEMP_DIR_LEN:
            raise BackendError(
                f"RAYLINE_RAY_TEMP_BASE={self._temp_base} is too long for Ray's socket paths "
                f"(AF_UNIX allows 107 bytes); use a short directory such as /tmp/rl"
            )

    # ------------------------------------------------------------ interface
    def provision(self, request: ClusterRequest) -> ClusterHandle:
        """Start the head and every worker node now; they become healthy in the background."""
        for resources in (request.head, request.worker):
            resource_flags(resources)  # refuse unsupported shapes before starting anything
        try:  # before anything under it is touched: another user may have made it
            ensure_private_dir(self._temp_base)
        except UnsafeDirectoryError as exc:
            raise ProvisionError(f"RAYLINE_RAY_TEMP_BASE: {exc}") from exc
        temp_dir = self.temp_dir_for(request.cluster_id)
        self._nodes.stop(temp_dir, [])  # leftovers of an earlier attempt for this cluster
        remove_tree(temp_dir)
        temp_dir.mkdir(mode=0o700)
        log_dir = self._state_dir / request.cluster_id
        try:
            ensure_private_dir(log_dir)  # it keeps the cluster's token
        except UnsafeDirectoryError as exc:
            remove_tree(temp_dir)
            raise ProvisionError(f"RAYLINE_CLUSTER_STATE_DIR: {exc}") from exc
        write_new_token(self.auth_token_path(request.cluster_id))
        count = ports_needed(request.node_count, self.settings.local_worker_ports_per_node)
        try:
            with self.coordination_lock(f"ports-{self._ip}"):
                block = self._ports.allocate(request.cluster_id, count, guard=temp_dir)
        except ProvisionError:
            remove_tree(temp_dir)
            remove_token(self.auth_token_path(request.cluster_id))
            raise
        plan = plan_ports(block, request.node_count, self.settings.local_worker_ports_per_node)
        nodes: list[LocalNode] = []
        try:
            self._start_nodes(request, temp_dir, log_dir, plan, nodes)
        except OSError as exc:
            self._nodes.stop(temp_dir, [n.process for n in nodes])
            remove_tree(temp_dir)
            remove_token(self.auth_token_path(request.cluster_id))
            self._ports.release(request.cluster_id)
            raise ProvisionError(
                f"could not start Ray for cluster {request.cluster_id}: {exc}; "
                f"check that {self._python} can run `ray start`"
            ) from exc
        data = LocalHandleData(
            temp_dir=str(temp_dir), log_dir=str(log_dir), ip=self._ip, ports=plan, nodes=nodes
        )
        log.info(
            "cluster %s: started %d Ray node(s) in %s", request.cluster_id, len(nodes), temp_dir
        )
        return self._handle(request.cluster_id, data)

    def probe(self, handle: ClusterHandle, expected_nodes: int) -> HealthReport:
        """Dead if any node process is gone (nothing restarts it); else ask the dashboard."""
        data = self._data(handle)
        gone = [n for n in data.nodes if not is_running(n.process)]
        if gone:
            reason = "; ".join(self._nodes.exit_story(n) for n in gone)
            return HealthReport(expected_nodes=expected_nodes, dead=True, reason=reason)
        token = self.auth_token(handle)
        with DashboardClient(
            handle.dashboard_url, timeout=_PROBE_TIMEOUT, token=token
        ) as dashboard:
            gcs_ok, why = dashboard.gcs_healthy()
            if not gcs_ok:
                return HealthReport(expected_nodes=expected_nodes, reason=why)
            job_api_ok, why_jobs = dashboard.job_api_ok()
            try:
                nodes = dashboard.nodes()
            except BackendUnavailableError as exc:
                nodes, why_nodes = [], f"node list unavailable ({exc})"
            else:
                why_nodes = ""
        alive = sum(n.alive for n in nodes)
        reasons = [why_jobs, why_nodes]
        if alive != expected_nodes:
            reasons.append(f"{alive} of {expected_nodes} nodes alive")
        return HealthReport(
            expected_nodes=expected_nodes,
            gcs_ok=True,
            alive_nodes=alive,
            job_api_ok=job_api_ok,
            reason="; ".join(r for r in reasons if r),
            nodes=[n.model_dump(mode="json") for n in nodes],
        )

    def activity(self, handle: ClusterHandle) -> Activity:
        """Jobs from the job API; Serve apps from the dashboard (0 if Serve is silent)."""
        token = self.auth_token(handle)
        with DashboardClient(
            handle.dashboard_url, timeout=_PROBE_TIMEOUT, token=token
        ) as dashboard:
            try:
                jobs = dashboard.job_counts()
            except BackendUnavailableError as exc:
                return Activity(error=str(exc))
        with DashboardClient(
            handle.dashboard_url, timeout=_SERVE_TIMEOUT, token=token
        ) as dashboard:
            apps = dashboard.serve_app_count()
        return Activity(running_jobs=jobs["running"], pending_jobs=jobs["pending"], serve_apps=apps)

    def terminate(self, handle: ClusterHandle) -> None:
        """Stop every process of the cluster, remove its temp dir, free its ports."""
        data = self._data(handle)
        temp_dir = Path(data.temp_dir)
        # Workers first, so the head never sees them die as failures worth reporting.
        self._nodes.stop(temp_dir, [n.process for n in reversed(data.nodes)])
        remove_tree(temp_dir)
        remove_token(self.auth_token_path(handle.cluster_id))
        self._ports.release(handle.cluster_id)
        self._nodes.forget(data.nodes)
        log.info("cluster %s: every Ray process stopped, %s removed", handle.cluster_id, temp_dir)

    def release_unrecorded(self, cluster_id: str) -> None:
        """Stop every process marked with the cluster's temp dir, remove it, free its ports."""
        temp_dir = self.temp_dir_for(cluster_id)
        orphans = find_marked(temp_dir, TEMP_DIR_ENV)
        kill_processes(orphans, signal.SIGTERM)
        self._nodes.stop(temp_dir, [])  # waits, then SIGKILLs what is left
        remove_tree(temp_dir)
        remove_token(self.auth_token_path(cluster_id))
        self._ports.release(cluster_id)
        if orphans:
            log.info("cluster %s: stopped %d unrecorded Ray process(es)", cluster_id, len(orphans))

    def adopt(self, handle: ClusterHandle) -> bool:
        """True when the head's ``ray start`` still runs and is provably this cluster's."""
        data = self._data(handle)
        return self._nodes.owns(data.head.process, Path(data.temp_dir))

    def capacity(self) -> Capacity:
        """This host's CPU cores, physical memory and NVIDIA GPUs."""
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return Capacity(
            max_cpus=float(len(os.sched_getaffinity(0))),
            max_memory_mb=memory // (1024 * 1024),
            max_gpus=_count_gpus(),
        )

    def auth_token_path(self, cluster_id: str) -> Path:
        """The cluster's token file, readable by this user only (same-machine clients)."""
        return self._state_dir / cluster_id / TOKEN_FILE_NAME

    # ------------------------------------------------------------ helpers
    def temp_dir_for(self, cluster_id: str) -> Path:
        """The cluster's Ray temp dir: short (socket paths) and fixed per cluster id."""
        return self._temp_base / hashlib.sha256(cluster_id.encode()).hexdigest()[:10]

    def _start_nodes(
        self,
        request: ClusterRequest,
        temp_dir: Path,
        log_dir: Path,
        plan: PortPlan,
        nodes: list[LocalNode],
    ) -> None:
        """Start every node's launcher; they take turns starting Ray (see above)."""
        python, ip, cluster_id = self._python, self._ip, request.cluster_id
        token_path = self.auth_token_path(cluster_id)
        # Ray gives a starting node short, fixed windows that nodes starting together
        # on a small, busy host miss: at most half the cores' worth start at once.
        slots = (self._state_dir / "start-slots", max(1, len(os.sched_getaffinity(0)) // 2))
        argv = head_command(
            python=python,
            ip=ip,
            temp_dir=temp_dir,
            head=plan.head,
            node=plan.nodes[0],
            resources=request.head,
            start_slots=slots,
        )
        env = ray_environment(
            os.environ,
            python=python,
            ip=ip,
            temp_dir=temp_dir,
            cluster_id=cluster_id,
            head=plan.head,
            auth_token_path=token_path,
        )
        nodes.append(self._nodes.spawn("head", "head", argv, env, log_dir, plan.nodes[0]))
        gcs_address = host_port(ip, plan.head.gcs)
        env = ray_environment(
            os.environ,
            python=python,
            ip=ip,
            temp_dir=temp_dir,
            cluster_id=cluster_id,
            auth_token_path=token_path,
        )
        dashboard_url = f"http://{host_port(ip, plan.head.dashboard)}"
        for i, ports in enumerate(plan.nodes[1:], start=1):
            argv = worker_command(
                python=python,
                ip=ip,
                temp_dir=temp_dir,
                gcs_address=gcs_address,
                node=ports,
                resources=request.worker,
                start_slots=slots,
                after_nodes=1,  # the head: never hold a start slot before it is up
                dashboard_url=dashboard_url,
            )
            nodes.append(self._nodes.spawn(f"worker-{i}", "worker", argv, env, log_dir, ports))

    def _data(self, handle: ClusterHandle) -> LocalHandleData:
        try:
            return LocalHandleData.model_validate(handle.handle)
        except ValidationError as exc:
            raise InvalidHandleError(
                f"handle of cluster {handle.cluster_id} is not a local-backend handle "
                f"({exc.errors()[0]['msg']}); find its processes with `ps e | grep {TEMP_DIR_ENV}`"
            ) from exc

    def _handle(self, cluster_id: str, data: LocalHandleData) -> ClusterHandle:
        ip = data.ip
        url = f"http://{host_port(ip, data.ports.head.dashboard)}"
        targets = {n.name: host_port(ip, n.ports.metrics_export) for n in data.nodes}
        targets["dashboard"] = host_port(ip, data.ports.head.dashboard_metrics)
        targets["autoscaler"] = host_port(ip, data.ports.head.autoscaler_metrics)
        return ClusterHandle(
            backend=self.name,
            cluster_id=cluster_id,
            head_address=host_port(ip, data.ports.head.gcs),
            dashboard_url=url,
            job_api_url=url,
            metrics_targets=targets,
            handle=data.model_dump(mode="json"),
        )


def _count_gpus() -> int:
    try:
        return sum(1 for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit())
    except OSError:
        return 0
