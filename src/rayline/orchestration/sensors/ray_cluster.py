"""A sensor that waits until a Rayline cluster is READY."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from rayline.clusters.schemas import ClusterPublic, ClusterState
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.operators.cluster_specs import cluster_summary
from rayline.orchestration.triggers.ray_cluster import RayClusterStateTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["WaitForRayClusterSensor"]


class WaitForRayClusterSensor(BaseSensorOperator):
    """Wait until a cluster is READY; fail at once when it FAILED or was deleted.

    Checks once, then pokes (``mode="poke"`` or ``"reschedule"``) or, with
    ``deferrable=True``, hands the wait to the triggerer. Returns (XCom) the
    cluster's ``cluster_id``, ``head_address``, ``job_api_url`` and ``dashboard_url``.

    :param cluster_id: the cluster to wait for. (templated)
    :param rayline_conn_id: the Rayline connection of the Cluster Manager.
    :param deferrable: wait in the triggerer instead of on a worker.
    """

    template_fields: Sequence[str] = ("cluster_id",)
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        cluster_id: str,
        rayline_conn_id: str = ClusterManagerHook.default_conn_name,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_id = cluster_id
        self.rayline_conn_id = rayline_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ClusterManagerHook:
        """The Cluster Manager hook of ``rayline_conn_id``."""
        return ClusterManagerHook(self.rayline_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        cluster = self.hook.get_cluster(self.cluster_id)
        self.log.info("Cluster %s is %s", cluster.id, cluster.state.value)
        _fail_if_ended(cluster)
        ready = cluster.state == ClusterState.READY
        return PokeReturnValue(
            is_done=ready, xcom_value=cluster_summary(cluster) if ready else None
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context=context)
        checked = self.poke(context)
        if checked.is_done:
            return checked.xcom_value
        self.defer(
            trigger=RayClusterStateTrigger(
                cluster_id=self.cluster_id,
                rayline_conn_id=self.rayline_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired; raise unless the cluster is READY."""
        if event["status"] != "success" or event.get("cluster") is None:
            raise AirflowException(
                f"cluster {event['cluster_id']} is not READY: {event['message']}"
            )
        cluster = ClusterPublic.model_validate(event["cluster"])
        self.log.info("Cluster %s is READY; job API at %s", cluster.id, cluster.job_api_url)
        return cluster_summary(cluster)


def _fail_if_ended(cluster: ClusterPublic) -> None:
    if cluster.state.is_terminal() or cluster.state == ClusterState.TERMINATING:
        raise AirflowException(
            f"cluster {cluster.id} is {cluster.state.value} and will never be READY: "
            f"{cluster.reason or 'no reason recorded'}; request a new cluster"
        )
