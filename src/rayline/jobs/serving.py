"""Run a deploy job on a serving cluster of the Cluster Manager, and follow it.

The CLI (and tests and benchmarks) do::

    outcome = run_deploy(manager, DeployRequest(model="iris", version=3), on_output=print)
    outcome.job.result.url  # where the model answers
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.jobs.client import JobClient, JobOutcome
from rayline.jobs.requests import DeployRequest

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings

__all__ = ["DeployOutcome", "run_deploy", "serving_cluster"]

_READY_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class DeployOutcome:
    """Which cluster ran the deploy job, and how the job ended."""

    cluster: ClusterPublic
    job: JobOutcome[Any]

    @property
    def result(self) -> Any:
        """The job's typed result (`DeployResult`, or `DeleteResult`), if it succeeded."""
        return self.job.result


def serving_cluster(
    manager: ClusterManagerClient,
    cluster_id: str | None = None,
    *,
    timeout: float = _READY_TIMEOUT_SECONDS,
    on_output: Callable[[str], None] | None = None,
) -> ClusterPublic:
    """The READY serving cluster to deploy on: the one named, a ready one, or a new one."""
    if cluster_id is None:
        ready = manager.list_clusters(purpose="serving", state="READY").data
        if ready:
            return ready[0]
        created = manager.create_cluster(
            ClusterCreate(name="serving", purpose=Purpose.SERVING, head=ResourceSpec(cpus=2))
        )
        cluster_id = created.id
        if on_output is not None:
            on_output(f"[rayline] asked for serving cluster {cluster_id}; waiting until READY\n")
    return manager.wait_until_ready(cluster_id, timeout=timeout)


def run_deploy(
    manager: ClusterManagerClient,
    request: DeployRequest,
    *,
    settings: Settings | None = None,
    on_output: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DeployOutcome:
    """Pick or create a serving cluster, run the deploy job there, follow it to the end.

    Args:
        manager: Client of the Cluster Manager.
        request: What to deploy; its ``cluster_id`` names the serving cluster
            (default: a READY one, else a new one).
        settings: Whose stores the job uses (default: this process's).
        on_output: Called with the job's log text as it arrives.
        timeout: Stop following after this many seconds (the job carries on).

    Raises:
        JobApiError: The job could not be submitted or followed.
    """
    cluster = serving_cluster(manager, request.cluster_id, on_output=on_output)
    client = JobClient.for_cluster(cluster, manager)  # with the cluster's Ray token
    job = client.run(
        request.model_copy(update={"cluster_id": cluster.id}),
        settings=settings,
        on_output=on_output,
        timeout=timeout,
    )
    return DeployOutcome(cluster=cluster, job=job)
