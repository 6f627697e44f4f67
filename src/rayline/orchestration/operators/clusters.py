"""Operators that create and delete Ray clusters through the Rayline Cluster Manager."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from rayline.clusters.errors import (
    ClusterFailedError,
    ClusterManagerError,
    ClusterNotFoundError,
    WaitTimeoutError,
)
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, ClusterState
from rayline.clusters.serving_homes import MODEL_LABEL
from rayline.orchestration import ids
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.operators.cluster_specs import (
    build_cluster_spec,
    cluster_summary,
    with_training_shape,
)
from rayline.orchestration.triggers.ray_cluster import RayClusterStateTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CreateRayClusterOperator", "DeleteRayClusterOperator"]


class CreateRayClusterOperator(BaseOperator):
    """Request a Ray cluster from the Cluster Manager and wait until it is READY.

    The request id derives from the DAG run, task and try number: the same try
    executed again (resumed, or its HTTP call retried) gets the same cluster,
    while a retry gets a new one. A retry first deletes the clusters earlier
    tries left, and a cluster that fails to become READY is deleted before the
    task fails, since a teardown does not run when its setup failed.

    Returns (XCom) the cluster's ``cluster_id``, ``head_address``,
    ``job_api_url``, ``dashboard_url``, ``labels`` and ``spec``; the
    ``cluster_id`` is also pushed under its own key as soon as it is known.

    :param spec: the cluster request, the fields of
        `rayline.clusters.schemas.ClusterCreate` (``purpose``, ``head``, ``worker``,
        ``worker_count``, ``ttl_seconds``, ``labels`` ...), as a dict or JSON. (templated)
    :param training_spec: a training spec (`rayline.training.spec.TrainingSpec` fields)
        the cluster is for: ``head``, ``worker`` and ``worker_count`` then default
        to the shape it needs (`rayline.training.resources.training_cluster_shape`);
        ``spec`` may still set them. (templated)
    :param name: the cluster name; derived from the task when None. (templated)
    :param model: the model a serving cluster is for: the request carries the
        ``rayline.model`` label, and the Cluster Manager answers it with that
        model's live serving cluster when it has one, so every version of a
        model is served on one cluster. Clusters of other runs are never
        deleted by this task. (templated)
    :param rayline_conn_id: the Rayline connection of the Cluster Manager.
    :param wait_for_ready: wait until the cluster is READY before succeeding.
    :param ready_timeout: seconds to wait for READY.
    :param deferrable: wait in the triggerer instead of on a worker.
    :param poll_interval: seconds between two status checks when deferred.
    :param adopt_from: the task id of an earlier ``CreateRayClusterOperator`` with
        ``wait_for_ready=False`` in this DAG run: the first try takes over the
        cluster it requested (if still alive) instead of requesting one, so the
        cluster can start while other work runs. Retries request their own.
    """

    template_fields: Sequence[str] = ("spec", "training_spec", "name", "model")
    template_fields_renderers: ClassVar[dict[str, str]] = {"spec": "json", "training_spec": "json"}
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        spec: Mapping[str, Any] | str,
        training_spec: Mapping[str, Any] | str | None = None,
        name: str | None = None,
        model: str | None = None,
        rayline_conn_id: str = ClusterManagerHook.default_conn_name,
        wait_for_ready: bool = True,
        ready_timeout: float = 600,
        deferrable: bool = False,
        poll_interval: float = 5.0,
        adopt_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.training_spec = training_spec
        self.name = name
        self.model = model
        self.rayline_conn_id = rayline_conn_id
        self.wait_for_ready = wait_for_ready
        self.ready_timeout = ready_timeout
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.adopt_from = adopt_from

    @cached_property
    def hook(self) -> ClusterManagerHook:
        """The Cluster Manager hook of ``rayline_conn_id``."""
        return ClusterManagerHook(self.rayline_conn_id)

    def build_request(self, key: ids.TaskKey) -> ClusterCreate:
        """The validated request of this task try (see `build_cluster_spec`)."""
        fields = self.spec
        if self.training_spec is not None:
            fields = with_training_shape(fields, self.training_spec)
        labels = {MODEL_LABEL: self.model} if self.model else None
        return build_cluster_spec(fields, key=key, name=self.name, labels=labels)

    def execute(self, context: Context) -> dict[str, Any]:
        key = ids.TaskKey.from_context(context)
        spec = self.build_request(key)
        self._delete_earlier_tries(key, context)
        cluster = self._adopted(key, context)
        if cluster is None:
            cluster = self.hook.create_cluster(spec)
            self.log.info(
                "Requested %s cluster %s (%s), request id %s: %s",
                spec.purpose.value,
                cluster.id,
                cluster.name,
                spec.request_id,
                cluster.state.value,
            )
        context["ti"].xcom_push(key="cluster_id", value=cluster.id)
        if not ids.made_in_run(cluster.labels, key):
            self.log.info(
                "Cluster %s is model %s's serving cluster: reusing it", cluster.id, self.model
            )
        if not self.wait_for_ready or cluster.state == ClusterState.READY:
            return cluster_summary(cluster, spec)
        if self.deferrable:
            self.defer(
                trigger=RayClusterStateTrigger(
                    cluster_id=cluster.id,
                    rayline_conn_id=self.rayline_conn_id,
                    poll_interval=self.poll_interval,
                    deadline=time.time() + self.ready_timeout,
                ),
                method_name="execute_complete",
            )
        return cluster_summary(self._wait_until_ready(cluster.id, key), spec)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired; fail (deleting the cluster) unless it is READY."""
        if event["status"] != "success" or event.get("cluster") is None:
            self._delete_after_failure(event["cluster_id"], ids.TaskKey.from_context(context))
            raise AirflowException(
                f"cluster {event['cluster_id']} did not become READY: {event['message']}"
            )
        cluster = ClusterPublic.model_validate(event["cluster"])
        self.log.info("Cluster %s is READY; job API at %s", cluster.id, cluster.job_api_url)
        # The same derivation as in execute(), so the same spec (for a replacement's twin).
        spec = self.build_request(ids.TaskKey.from_context(context))
        return cluster_summary(cluster, spec)

    def _wait_until_ready(self, cluster_id: str, key: ids.TaskKey) -> ClusterPublic:
        seen: list[ClusterState] = []

        def report(cluster: ClusterPublic) -> None:
            if not seen or seen[-1] != cluster.state:
                seen.append(cluster.state)
                self.log.info("Cluster %s is %s", cluster.id, cluster.state.value)

        try:
            cluster = self.hook.wait_until_ready(
                cluster_id, timeout=self.ready_timeout, on_poll=report
            )
        except (ClusterFailedError, WaitTimeoutError) as exc:
            self._delete_after_failure(cluster_id, key)
            raise AirflowException(f"cluster {cluster_id} did not become READY: {exc}") from exc
        self.log.info("Cluster %s is READY; job API at %s", cluster.id, cluster.job_api_url)
        return cluster

    def _early_cluster_id(self, context: Context) -> str | None:
        if self.adopt_from is None:
            return None
        value = context["ti"].xcom_pull(task_ids=self.adopt_from, key="cluster_id")
        return str(value) if value else None

    def _adopted(self, key: ids.TaskKey, context: Context) -> ClusterPublic | None:
        """The first try's cluster requested early by ``adopt_from``, while it is alive."""
        cluster_id = self._early_cluster_id(context)
        if cluster_id is None or key.try_number > 1:
            return None
        try:
            cluster = self.hook.get_cluster(cluster_id)
        except ClusterNotFoundError:
            cluster = None
        if (
            cluster is None
            or cluster.state.is_terminal()
            or cluster.state == ClusterState.TERMINATING
        ):
            self.log.info(
                "Cluster %s (from %s) has ended: requesting one", cluster_id, self.adopt_from
            )
            return None
        self.log.info(
            "Taking over cluster %s, requested early by %s: %s",
            cluster.id,
            self.adopt_from,
            cluster.state.value,
        )
        return cluster

    def _delete_earlier_tries(self, key: ids.TaskKey, context: Context) -> None:
        """Delete what earlier tries of this task left (they failed, so nobody uses it)."""
        if key.try_number <= 1:
            return
        early = self._early_cluster_id(context)
        if early is not None and self._made_in_run(early, key):  # taken over from `adopt_from`
            self.log.info("Deleting cluster %s, which an earlier try took over", early)
            self.hook.delete_cluster(early)
        earlier = {ids.cluster_request_id(key.with_try(n)) for n in range(1, key.try_number)}
        for cluster in self.hook.live_clusters(ids.run_labels(key)):
            if cluster.request_id in earlier:
                self.log.info("Deleting cluster %s left by an earlier try", cluster.id)
                self.hook.delete_cluster(cluster.id)

    def _made_in_run(self, cluster_id: str, key: ids.TaskKey) -> bool:
        """Whether this DAG run requested the cluster (not another run's model cluster)."""
        try:
            cluster = self.hook.get_cluster(cluster_id)
        except ClusterNotFoundError:
            return False
        if ids.made_in_run(cluster.labels, key):
            return True
        self.log.info("Leaving cluster %s alone: another run made it for its model", cluster_id)
        return False

    def _delete_after_failure(self, cluster_id: str, key: ids.TaskKey) -> None:
        self.log.info("Deleting cluster %s, which did not become READY", cluster_id)
        try:
            if not self._made_in_run(cluster_id, key):
                return
            self.hook.delete_cluster(cluster_id)
        except ClusterManagerError as exc:
            # The original failure matters more; the cluster's TTL or the teardown
            # (which deletes by run labels) still removes it.
            self.log.error("Could not delete cluster %s: %s", cluster_id, exc)


class DeleteRayClusterOperator(BaseOperator):
    """Delete Ray clusters; idempotent, meant to be a teardown task.

    Deletes the cluster ``cluster_id`` and, with ``created_by``, every live
    cluster that task made in this DAG run (all its tries, and the replacements
    `SubmitRayJobOperator` made for it). Clusters already gone are fine.

    Use it as the teardown of a `CreateRayClusterOperator`::

        create = CreateRayClusterOperator(task_id="create_cluster", spec={...})
        delete = DeleteRayClusterOperator(task_id="delete_cluster", created_by="create_cluster")
        create >> work >> delete.as_teardown(setups=create)

    Returns (XCom) the ids of the clusters it deleted.

    :param cluster_id: a cluster to delete. (templated)
    :param created_by: the task id (or ids) of `CreateRayClusterOperator` tasks
        whose clusters of this DAG run to delete.
    :param keep_if_succeeded: task ids; when all of them succeeded in this DAG
        run, delete nothing (e.g. keep a serving cluster whose endpoint answered,
        delete it when the deployment failed).
    :param wait_for_termination: wait until the clusters have released their
        resources (processes, ports), so the next cluster finds them free.
    :param termination_timeout: seconds to wait for that.
    :param rayline_conn_id: the Rayline connection of the Cluster Manager.
    """

    template_fields: Sequence[str] = ("cluster_id",)
    ui_color = "#fcd9cf"

    def __init__(
        self,
        *,
        cluster_id: str | None = None,
        created_by: str | Sequence[str] | None = None,
        keep_if_succeeded: Sequence[str] = (),
        wait_for_termination: bool = True,
        termination_timeout: float = 180,
        rayline_conn_id: str = ClusterManagerHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cluster_id is None and not created_by:
            raise ValueError(f"{self.task_id}: give cluster_id, created_by, or both")
        self.cluster_id = cluster_id
        self.created_by = [created_by] if isinstance(created_by, str) else list(created_by or ())
        self.keep_if_succeeded = tuple(keep_if_succeeded)
        self.wait_for_termination = wait_for_termination
        self.termination_timeout = termination_timeout
        self.rayline_conn_id = rayline_conn_id

    @cached_property
    def hook(self) -> ClusterManagerHook:
        """The Cluster Manager hook of ``rayline_conn_id``."""
        return ClusterManagerHook(self.rayline_conn_id)

    def execute(self, context: Context) -> list[str]:
        if self._keep(context):
            self.log.info("Keeping the clusters: %s succeeded", ", ".join(self.keep_if_succeeded))
            return []
        targets = self._targets(context)
        if not targets:
            self.log.info("No cluster to delete")
            return []
        ending = []
        for cluster_id in targets:
            cluster = self.hook.delete_cluster(cluster_id)
            self.log.info(
                "Deleting cluster %s: %s", cluster_id, cluster.state.value if cluster else "gone"
            )
            if cluster is not None and not cluster.state.is_terminal():
                ending.append(cluster_id)
        if self.wait_for_termination:
            for cluster_id in ending:
                ended = self.hook.wait_until_terminated(
                    cluster_id, timeout=self.termination_timeout
                )
                self.log.info("Cluster %s is %s", cluster_id, ended.state.value)
        return targets

    def _targets(self, context: Context) -> list[str]:
        targets = [self.cluster_id] if self.cluster_id else []
        origin = ids.TaskKey.from_context(context)
        for task_id in self.created_by:
            labels = ids.run_labels(
                ids.TaskKey(
                    dag_id=origin.dag_id, run_id=origin.run_id, task_id=task_id, try_number=1
                )
            )
            targets += [c.id for c in self.hook.live_clusters(labels) if c.id not in targets]
        return targets

    def _keep(self, context: Context) -> bool:
        if not self.keep_if_succeeded:
            return False
        ti = context["ti"]
        states = ti.get_task_states(
            dag_id=ti.dag_id, task_ids=list(self.keep_if_succeeded), run_ids=[ti.run_id]
        ).get(ti.run_id, {})
        return all(states.get(task_id) == "success" for task_id in self.keep_if_succeeded)
