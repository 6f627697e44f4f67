"""record_transition: allowed moves write an event, forbidden ones write nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, select

from rayline.metadata.clusters import record_transition
from rayline.metadata.db import session_scope
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.errors import ClusterNotFoundError, InvalidTransitionError
from rayline.metadata.models import Cluster, ClusterEvent

S = ClusterState


def _new_cluster(engine: Engine, state: ClusterState = S.PENDING) -> str:
    with session_scope(engine) as session:
        cluster = Cluster(
            name="train", purpose=ClusterPurpose.TRAINING, backend="local", state=state
        )
        session.add(cluster)
        session.flush()
        return cluster.id


def _events(engine: Engine, cluster_id: str) -> list[tuple[ClusterState | None, ClusterState]]:
    with session_scope(engine) as session:
        query = (
            select(ClusterEvent)
            .where(ClusterEvent.cluster_id == cluster_id)
            .order_by(ClusterEvent.id)
        )
        return [(e.from_state, e.to_state) for e in session.scalars(query)]


def test_new_cluster_gets_a_prefixed_id_and_pending_state(engine: Engine) -> None:
    cluster_id = _new_cluster(engine)

    assert re.fullmatch(r"rc-[0-9a-f]{12}", cluster_id)
    with session_scope(engine) as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None
        assert cluster.state is S.PENDING
        assert (cluster.spec, cluster.labels, cluster.nodes) == ({}, {}, [])


def test_full_lifecycle_writes_one_event_per_move(engine: Engine) -> None:
    cluster_id = _new_cluster(engine)
    path = [S.PROVISIONING, S.READY, S.UNHEALTHY, S.READY, S.TERMINATING, S.TERMINATED]

    for state in path:
        cluster = record_transition(engine, cluster_id, state, f"now {state.value}")

    assert cluster.state is S.TERMINATED
    assert cluster.state_reason == "now TERMINATED"
    assert cluster.ready_at is not None and cluster.terminated_at is not None
    assert cluster.ready_at <= cluster.terminated_at
    assert _events(engine, cluster_id) == list(zip([S.PENDING, *path[:-1]], path, strict=True))


def test_ready_at_keeps_the_first_time(engine: Engine) -> None:
    cluster_id = _new_cluster(engine, S.PROVISIONING)
    first = record_transition(engine, cluster_id, S.READY, "up").ready_at
    record_transition(engine, cluster_id, S.UNHEALTHY, "node lost")

    assert record_transition(engine, cluster_id, S.READY, "back").ready_at == first


@pytest.mark.parametrize("live", [S.PENDING, S.PROVISIONING, S.READY, S.UNHEALTHY, S.TERMINATING])
def test_failed_from_any_live_state(engine: Engine, live: ClusterState) -> None:
    cluster_id = _new_cluster(engine, live)

    cluster = record_transition(engine, cluster_id, S.FAILED, "head node crashed")

    assert cluster.state is S.FAILED
    assert cluster.terminated_at is not None


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.PENDING, S.READY),
        (S.READY, S.PENDING),
        (S.READY, S.TERMINATED),
        (S.TERMINATING, S.READY),
        (S.TERMINATED, S.PROVISIONING),
        (S.FAILED, S.TERMINATING),
        (S.READY, S.READY),
    ],
)
def test_forbidden_moves_are_refused_and_leave_no_trace(
    engine: Engine, source: ClusterState, target: ClusterState
) -> None:
    cluster_id = _new_cluster(engine, source)

    with pytest.raises(InvalidTransitionError, match=f"from {source.value} to {target.value}"):
        record_transition(engine, cluster_id, target, "should not happen")

    with session_scope(engine) as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None and cluster.state is source
    assert _events(engine, cluster_id) == []


def test_transition_in_callers_session_updates_its_object(engine: Engine) -> None:
    cluster_id = _new_cluster(engine)
    with session_scope(engine) as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None

        record_transition(session, cluster, S.PROVISIONING, "starting head")

        assert cluster.state is S.PROVISIONING
    assert _events(engine, cluster_id) == [(S.PENDING, S.PROVISIONING)]


def test_unknown_cluster(engine: Engine) -> None:
    with pytest.raises(ClusterNotFoundError, match="rc-missing"):
        record_transition(engine, "rc-missing", S.READY, "?")
