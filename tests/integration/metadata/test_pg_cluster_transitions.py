"""Concurrent cluster transitions on Postgres: one winner, an unbroken event chain."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select

from rayline.metadata.clusters import record_transition
from rayline.metadata.db import session_scope
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.errors import InvalidTransitionError
from rayline.metadata.models import Cluster, ClusterEvent

pytestmark = pytest.mark.integration

S = ClusterState
THREADS = 8
ATTEMPTS = 10


def _ready_cluster(engine: Engine) -> str:
    with session_scope(engine) as session:
        cluster = Cluster(
            name="serve", purpose=ClusterPurpose.SERVING, backend="local", state=S.READY
        )
        session.add(cluster)
        session.flush()
        return cluster.id


def _attempt(engine: Engine, cluster_id: str, target: ClusterState) -> bool:
    try:
        record_transition(engine, cluster_id, target, f"to {target.value}")
    except InvalidTransitionError:
        return False
    return True


def _race(engine: Engine, cluster_id: str, targets: list[list[ClusterState]]) -> int:
    """Each thread tries its list of moves; return how many moves succeeded."""
    barrier = threading.Barrier(len(targets))

    def work(mine: list[ClusterState]) -> int:
        barrier.wait()
        return sum(_attempt(engine, cluster_id, target) for target in mine)

    with ThreadPoolExecutor(len(targets)) as pool:
        return sum(pool.map(work, targets))


def _events(engine: Engine, cluster_id: str) -> list[ClusterEvent]:
    with session_scope(engine) as session:
        query = select(ClusterEvent).where(ClusterEvent.cluster_id == cluster_id)
        return list(session.scalars(query.order_by(ClusterEvent.id)))


def test_only_one_of_many_racing_deletes_wins(pg_engine: Engine) -> None:
    cluster_id = _ready_cluster(pg_engine)

    wins = _race(pg_engine, cluster_id, [[S.TERMINATING]] * THREADS)

    assert wins == 1
    assert [(e.from_state, e.to_state) for e in _events(pg_engine, cluster_id)] == [
        (S.READY, S.TERMINATING)
    ]


def test_flapping_health_keeps_an_unbroken_event_chain(pg_engine: Engine) -> None:
    cluster_id = _ready_cluster(pg_engine)
    # Half the threads start by marking it unhealthy, half by marking it ready.
    plans = [[(S.UNHEALTHY, S.READY)[(i + j) % 2] for j in range(ATTEMPTS)] for i in range(THREADS)]

    wins = _race(pg_engine, cluster_id, plans)

    events = _events(pg_engine, cluster_id)
    assert len(events) == wins > 0
    assert events[0].from_state is S.READY
    for before, after in itertools.pairwise(events):
        assert after.from_state is before.to_state
    assert all(e.from_state and e.from_state.can_become(e.to_state) for e in events)
    with session_scope(pg_engine) as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None and cluster.state is events[-1].to_state
