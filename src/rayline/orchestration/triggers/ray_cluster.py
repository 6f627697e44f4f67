"""A trigger that waits for a Rayline cluster to reach a state (READY, usually)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from rayline.clusters.errors import ClusterManagerError
from rayline.clusters.schemas import ClusterPublic, ClusterState
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook

__all__ = ["RayClusterStateTrigger"]

#: One long-poll's length; the manager caps it at 60 s.
_LONG_POLL_SECONDS = 30.0


class RayClusterStateTrigger(BaseTrigger):
    """Poll the Cluster Manager until a cluster is in ``target_state``, then fire one event.

    The event is ``{"status": "success" | "error", "message": ..., "cluster_id": ...,
    "cluster": <the cluster as JSON, or None>}``. A cluster that ended (FAILED,
    TERMINATED) before reaching the state, or a manager that stays unreachable
    past the client's retries, gives an error event rather than an exception.

    It waits with the manager's long-poll (``POST /v1/clusters/{id}/wait``), which
    answers as soon as the cluster changes state, so READY is seen without a
    polling delay. The client is blocking: each request runs in a thread.

    :param cluster_id: the cluster to watch.
    :param target_state: the state to wait for.
    :param rayline_conn_id: the Airflow connection of the Cluster Manager.
    :param poll_interval: the shortest long-poll, in seconds.
    :param deadline: UNIX time after which the trigger gives up with an error event
        (an absolute time, so a triggerer restart does not extend the wait).
    """

    def __init__(
        self,
        *,
        cluster_id: str,
        target_state: str = ClusterState.READY.value,
        rayline_conn_id: str = ClusterManagerHook.default_conn_name,
        poll_interval: float = 5.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.cluster_id = cluster_id
        self.target_state = target_state
        self.rayline_conn_id = rayline_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize RayClusterStateTrigger arguments and classpath."""
        return (
            "rayline.orchestration.triggers.ray_cluster.RayClusterStateTrigger",
            {
                "cluster_id": self.cluster_id,
                "target_state": self.target_state,
                "rayline_conn_id": self.rayline_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _get_hook(self) -> ClusterManagerHook:
        return ClusterManagerHook(self.rayline_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the cluster until it is in the target state or can never get there."""
        wanted = ClusterState(self.target_state)
        hook = self._get_hook()
        try:
            client = await hook.aget_conn()
            cluster = await asyncio.to_thread(client.get_cluster, self.cluster_id)
            while True:
                if cluster.state == wanted:
                    yield self._event("success", f"cluster is {wanted.value}", cluster)
                    return
                if _never(cluster.state, wanted):
                    reason = cluster.reason or "no reason recorded"
                    message = (
                        f"cluster is {cluster.state.value} and will never be {wanted.value}: "
                        f"{reason}"
                    )
                    yield self._event("error", message, cluster)
                    return
                if self.deadline is not None and time.time() >= self.deadline:
                    message = (
                        f"cluster is still {cluster.state.value}, not {wanted.value}, "
                        "at the deadline"
                    )
                    yield self._event("error", message, cluster)
                    return
                self.log.info(
                    "Cluster %s is %s; waiting for %s",
                    self.cluster_id,
                    cluster.state.value,
                    wanted.value,
                )
                # The manager's long-poll answers the moment the state changes: no
                # polling delay. A thread per waiting trigger, each mostly asleep.
                cluster = await asyncio.to_thread(
                    client.wait_for_state,
                    self.cluster_id,
                    state=wanted,
                    timeout=self._poll_seconds(),
                )
        except ClusterManagerError as exc:
            yield self._event("error", str(exc), None)
        finally:
            hook.close()

    def _poll_seconds(self) -> float:
        """How long one long-poll may last: ``poll_interval`` at least, up to the deadline."""
        longest = max(self.poll_interval, _LONG_POLL_SECONDS)
        if self.deadline is None:
            return longest
        return max(self.poll_interval, min(longest, self.deadline - time.time()))

    def _event(self, status: str, message: str, cluster: ClusterPublic | None) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "cluster_id": self.cluster_id,
                "cluster": cluster.model_dump(mode="json") if cluster is not None else None,
            }
        )


def _never(current: ClusterState, wanted: ClusterState) -> bool:
    """True when a cluster in ``current`` can never get to ``wanted``."""
    if current == wanted:
        return False
    # TERMINATING only leads to TERMINATED (or FAILED).
    return current.is_terminal() or (
        current == ClusterState.TERMINATING and not wanted.is_terminal()
    )
