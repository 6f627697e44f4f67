"""The serving reaper's decision, on cluster rows and activity made by hand."""

from __future__ import annotations

from datetime import timedelta

from rayline.clusters.backends.base import Activity
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.serving_homes import (
    MODEL_LABEL,
    ServingUse,
    model_of,
    serving_idle_reason,
)
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.models import Cluster
from rayline.metadata.types import utcnow

NOW = utcnow()
LIMIT = 300.0


def cluster(
    *,
    idle: float = LIMIT + 1,
    purpose: ClusterPurpose = ClusterPurpose.SERVING,
    state: ClusterState = ClusterState.READY,
) -> Cluster:
    started = NOW - timedelta(seconds=idle)
    return Cluster(
        id="c1", purpose=purpose, state=state, created_at=started, ready_at=started, labels={}
    )


def reason(row: Cluster, use: ServingUse | None = None, **kwargs: object) -> str | None:
    return serving_idle_reason(
        row,
        use or ServingUse(),
        now=NOW,
        limit_seconds=LIMIT,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_ready_serving_cluster_idle_past_the_limit_is_reaped_saying_why() -> None:
    why = reason(cluster())
    assert why is not None
    assert "backs no live deployment" in why and "RAYLINE_SERVING_IDLE_SECONDS=300" in why


def test_kept_when_young_backed_busy_or_not_a_ready_serving_cluster() -> None:
    assert reason(cluster(idle=LIMIT - 5)) is None
    assert reason(cluster(), ServingUse(backed={"c1"})) is None
    assert reason(cluster(purpose=ClusterPurpose.TRAINING)) is None
    assert reason(cluster(state=ClusterState.UNHEALTHY)) is None
    assert reason(cluster(), activity=Activity(running_jobs=1)) is None
    assert reason(cluster(), activity=Activity(pending_jobs=1)) is None
    assert reason(cluster(), activity=Activity(error="job API timed out")) is None  # never blind


def test_idle_time_counts_from_the_last_deployment_change_or_activity() -> None:
    row = cluster(idle=10 * LIMIT)
    recent = NOW - timedelta(seconds=LIMIT / 2)
    assert reason(row, ServingUse(last_change={"c1": recent})) is None
    row.last_active_at = recent
    assert reason(row) is None


def test_a_leftover_serve_app_does_not_keep_a_cluster() -> None:
    # With no active deployment nobody reaches the app through the manager.
    assert reason(cluster(), activity=Activity(serve_apps=1)) is not None


def test_the_model_of_a_request_is_its_label_on_serving_requests_only() -> None:
    labelled = {"labels": {MODEL_LABEL: "iris"}}
    assert model_of(ClusterCreate(name="s", purpose="serving", **labelled)) == "iris"  # type: ignore[arg-type]
    assert model_of(ClusterCreate(name="s", purpose="serving")) is None
    assert model_of(ClusterCreate(name="t", purpose="training", **labelled)) is None  # type: ignore[arg-type]
