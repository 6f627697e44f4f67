"""The cluster lifecycle table, checked pair by pair."""

from __future__ import annotations

import itertools

import pytest

from rayline.metadata.enums import ClusterState

S = ClusterState
ALLOWED = {
    (S.PENDING, S.PROVISIONING),
    (S.PROVISIONING, S.READY),
    (S.READY, S.UNHEALTHY),
    (S.UNHEALTHY, S.READY),
    (S.TERMINATING, S.TERMINATED),
    # warm pools: started for a pool, adopted once, never back
    (S.PROVISIONING, S.POOLED),
    (S.POOLED, S.READY),
    (S.POOLED, S.TERMINATING),
    (S.POOLED, S.FAILED),
    # teardown, also while still starting
    (S.PENDING, S.TERMINATING),
    (S.PROVISIONING, S.TERMINATING),
    (S.READY, S.TERMINATING),
    (S.UNHEALTHY, S.TERMINATING),
    # FAILED from any live state
    (S.PENDING, S.FAILED),
    (S.PROVISIONING, S.FAILED),
    (S.READY, S.FAILED),
    (S.UNHEALTHY, S.FAILED),
    (S.TERMINATING, S.FAILED),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_can_become_matches_the_lifecycle(source: ClusterState, target: ClusterState) -> None:
    assert source.can_become(target) == ((source, target) in ALLOWED)


def test_only_terminated_and_failed_are_terminal() -> None:
    assert {s for s in S if s.is_terminal()} == {S.TERMINATED, S.FAILED}
