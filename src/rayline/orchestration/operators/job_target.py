"""Where a Ray job runs: the cluster an operator was given, or a replacement for it.

`SubmitRayJobOperator` gets its cluster as the XCom of a `CreateRayClusterOperator`.
Before submitting, the cluster is looked up: one still starting is waited for,
and a dead one (its head was killed, say) is replaced by a cluster with the
same spec and labels, so a task's retry runs on a live cluster and the
original teardown still deletes the replacement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowException

from rayline.clusters.errors import ClusterFailedError, WaitTimeoutError
from rayline.clusters.schemas import ClusterPublic, ClusterState
from rayline.orchestration import ids
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.operators.cluster_specs import build_cluster_spec
from rayline.orchestration.operators.job_logs import TaskLog

__all__ = ["JobTarget", "resolve_cluster_target"]

#: The label a replacement cluster carries: the id of the cluster it replaces.
REPLACES_LABEL = "rayline-replaces"


@dataclass(frozen=True)
class JobTarget:
    """Where the job runs: the job API, and the Rayline cluster behind it if known."""

    job_api_url: str | None
    cluster_id: str | None
    ray_address: str | None = None

    @classmethod
    def of(cls, cluster: ClusterPublic) -> JobTarget:
        """The target of a READY cluster."""
        return cls(cluster.job_api_url, cluster.id, cluster.head_address)


def resolve_cluster_target(
    hook: ClusterManagerHook,
    given: Mapping[str, Any],
    *,
    key: ids.TaskKey,
    log: TaskLog,
    ready_timeout: float,
    replace_dead: bool,
    on_replacement: Callable[[str], None],
) -> JobTarget:
    """The live cluster a job should run on: the given one, or its replacement.

    Args:
        hook: the Cluster Manager.
        given: the XCom value of a `CreateRayClusterOperator` (``cluster_id``,
            and ``spec`` and ``labels`` to make a replacement from).
        key: the task try asking (the replacement's request id derives from it).
        log: the task's logger.
        ready_timeout: seconds to wait for the cluster (or its replacement).
        replace_dead: request a replacement when the cluster died.
        on_replacement: called with the replacement's id as soon as it is known.

    Raises:
        AirflowException: the cluster died and cannot be replaced, or its
            replacement did not become READY.
    """
    cluster_id = str(given["cluster_id"])
    cluster = hook.get_cluster(cluster_id)
    if cluster.state == ClusterState.READY:
        return JobTarget.of(cluster)
    problem = f"cluster {cluster_id} is {cluster.state.value}: {cluster.reason or 'no reason'}"
    if not cluster.state.is_terminal() and cluster.state != ClusterState.TERMINATING:
        log.info("Cluster %s is %s; waiting for READY", cluster_id, cluster.state.value)
        try:
            return JobTarget.of(hook.wait_until_ready(cluster_id, timeout=ready_timeout))
        except (ClusterFailedError, WaitTimeoutError) as exc:
            problem = str(exc)
    if not replace_dead or not given.get("spec"):
        raise AirflowException(
            f"cannot run the job: {problem}; recreate the cluster (clear its setup task) "
            "or pass a cluster XCom with a spec and replace_dead_cluster=True"
        )
    log.warning("%s; requesting a replacement cluster", problem)
    return _replace(
        hook, given, key=key, log=log, ready_timeout=ready_timeout, notify=on_replacement
    )


def _replace(
    hook: ClusterManagerHook,
    dead: Mapping[str, Any],
    *,
    key: ids.TaskKey,
    log: TaskLog,
    ready_timeout: float,
    notify: Callable[[str], None],
) -> JobTarget:
    hook.delete_cluster(str(dead["cluster_id"]))
    labels = {**dict(dead.get("labels") or {}), REPLACES_LABEL: str(dead["cluster_id"])}
    spec = build_cluster_spec(dead["spec"], key=key, labels=labels)
    cluster = hook.create_cluster(spec)
    log.info("Replacement cluster %s requested (request id %s)", cluster.id, spec.request_id)
    notify(cluster.id)
    try:
        cluster = hook.wait_until_ready(cluster.id, timeout=ready_timeout)
    except (ClusterFailedError, WaitTimeoutError) as exc:
        # It carries the original's labels, so the original's teardown deletes it.
        raise AirflowException(
            f"replacement cluster {cluster.id} did not become READY: {exc}"
        ) from exc
    log.info("Replacement cluster %s is READY; job API at %s", cluster.id, cluster.job_api_url)
    return JobTarget.of(cluster)
