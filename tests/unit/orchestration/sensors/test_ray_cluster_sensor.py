"""WaitForRayClusterSensor: pokes, fails fast on a dead cluster, checks once before deferring."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from rayline.clusters.schemas import ClusterState
from rayline.orchestration.sensors.ray_cluster import WaitForRayClusterSensor
from rayline.orchestration.triggers.ray_cluster import RayClusterStateTrigger
from tests.unit.orchestration.fakes import FakeClusterManagerHook, FakeTI, context_for, make_cluster


def _sensor(state: ClusterState, **kwargs: object) -> WaitForRayClusterSensor:
    manager = FakeClusterManagerHook()
    manager.add(make_cluster("rc-1", state=state))
    sensor = WaitForRayClusterSensor(task_id="wait", cluster_id="rc-1", **kwargs)  # type: ignore[arg-type]
    sensor.__dict__["hook"] = manager
    return sensor


def test_ready_cluster_is_done_with_its_addresses() -> None:
    result = _sensor(ClusterState.READY).poke(context_for(FakeTI("wait")))
    assert result.is_done
    assert result.xcom_value["job_api_url"] == "http://127.0.0.1:8265"


def test_provisioning_cluster_is_not_done_yet() -> None:
    assert not _sensor(ClusterState.PROVISIONING).poke(context_for(FakeTI("wait"))).is_done


@pytest.mark.parametrize(
    "state", [ClusterState.FAILED, ClusterState.TERMINATED, ClusterState.TERMINATING]
)
def test_ended_cluster_fails_at_once(state: ClusterState) -> None:
    with pytest.raises(AirflowException, match="will never be READY"):
        _sensor(state).poke(context_for(FakeTI("wait")))


def test_deferrable_sensor_checks_once_then_defers() -> None:
    ready = _sensor(ClusterState.READY, deferrable=True).execute(context_for(FakeTI("wait")))
    assert ready["cluster_id"] == "rc-1"

    sensor = _sensor(ClusterState.PROVISIONING, deferrable=True, poke_interval=7, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for(FakeTI("wait")))
    trigger = deferred.value.trigger
    assert isinstance(trigger, RayClusterStateTrigger)
    assert (trigger.cluster_id, trigger.poll_interval) == ("rc-1", 7)


def test_execute_complete_raises_unless_ready() -> None:
    sensor = _sensor(ClusterState.READY)
    event = {
        "status": "error",
        "message": "cluster is FAILED",
        "cluster_id": "rc-1",
        "cluster": None,
    }
    with pytest.raises(AirflowException, match="not READY: cluster is FAILED"):
        sensor.execute_complete(context_for(FakeTI("wait")), event)
