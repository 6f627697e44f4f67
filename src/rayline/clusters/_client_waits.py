"""Waiting on a cluster's state: the long-poll methods of `ClusterManagerClient`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rayline.clusters._transport import Transport, parse, segment
from rayline.clusters.errors import ClusterFailedError, WaitTimeoutError
from rayline.clusters.schemas import ClusterPublic, ClusterState

__all__ = ["WaitMethods"]

# The server caps one long-poll at 60 s; asking for more only delays progress reports.
_MAX_POLL_SECONDS = 60.0
# A long-poll that comes back at once without news would spin; wait this long instead.
_MIN_POLL_SECONDS = 1.0


class WaitMethods:
    """Long-poll until a cluster reaches a state, fails, or time is up."""

    _transport: Transport
    _timeout: float
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]

    if TYPE_CHECKING:

        def get_cluster(self, cluster_id: str) -> ClusterPublic: ...

    def wait_for_state(
        self, cluster_id: str, *, state: ClusterState | str, timeout: float
    ) -> ClusterPublic:
        """Long-poll once: return when the cluster is in ``state``, ends, or time is up.

        One poll lasts at most 60 s (longer timeouts are cut to that), so check
        the returned state; use `wait_until` to wait longer or to get an error
        when the cluster fails.

        Args:
            cluster_id: the cluster's id.
            state: the state to wait for.
            timeout: seconds the server should wait at most (60 at most).

        Returns:
            The cluster when the poll ended, in whatever state it was.

        Raises:
            ClusterNotFoundError: no cluster has this id.
        """
        timeout = min(max(0.0, timeout), _MAX_POLL_SECONDS)  # the server refuses more
        response = self._transport.request(
            "POST",
            f"/v1/clusters/{segment(cluster_id)}/wait",
            what="wait request",
            cluster_id=cluster_id,
            params=[("state", str(state)), ("timeout", f"{timeout:.3f}")],
            # The server holds the answer for up to `timeout`; don't give up before it.
            timeout=self._timeout + timeout,
        )
        return parse(response, ClusterPublic)

    def wait_until(
        self,
        cluster_id: str,
        *,
        state: ClusterState | str,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
        poll_timeout: float = _MAX_POLL_SECONDS,
    ) -> ClusterPublic:
        """Wait until the cluster is in ``state``, long-polling the manager.

        Args:
            cluster_id: the cluster's id.
            state: the state to wait for, e.g. READY or TERMINATED.
            timeout: seconds to wait in total.
            on_poll: called with the cluster after every poll (progress reports).
            poll_timeout: seconds one long-poll may last; lower it for more
                frequent ``on_poll`` calls.

        Returns:
            The cluster, in ``state``.

        Raises:
            ClusterFailedError: the cluster ended, or is ending, without reaching
                ``state``; the error carries the state and reason.
            WaitTimeoutError: ``timeout`` passed first.
            ClusterNotFoundError: no cluster has this id.

        Example:
            >>> client.wait_until(cid, state="TERMINATED", timeout=120)  # doctest: +SKIP
        """
        wanted = ClusterState(state)
        deadline = self._clock() + timeout
        cluster = self.get_cluster(cluster_id)
        while True:
            if on_poll is not None:
                on_poll(cluster)
            if cluster.state == wanted:
                return cluster
            if _unreachable(cluster.state, wanted):
                raise ClusterFailedError(
                    cluster_id, state=cluster.state, reason=cluster.reason, wanted=wanted
                )
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeoutError(
                    cluster_id, wanted=wanted, state=cluster.state, timeout=timeout
                )
            started = self._clock()
            cluster = self.wait_for_state(
                cluster_id, state=wanted, timeout=min(remaining, poll_timeout)
            )
            spent = self._clock() - started
            pending = cluster.state != wanted and not _unreachable(cluster.state, wanted)
            if pending and spent < _MIN_POLL_SECONDS:
                self._sleep(max(0.0, min(_MIN_POLL_SECONDS - spent, deadline - self._clock())))

    def wait_until_ready(
        self,
        cluster_id: str,
        *,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
    ) -> ClusterPublic:
        """Wait until the cluster is READY: GCS healthy, every node alive, job API up.

        Args:
            cluster_id: the cluster's id.
            timeout: seconds to wait in total.
            on_poll: called with the cluster after every poll (progress reports).

        Returns:
            The READY cluster, with ``job_api_url`` set.

        Raises:
            ClusterFailedError: the cluster FAILED or was terminated; see ``reason``.
            WaitTimeoutError: ``timeout`` passed first.
            ClusterNotFoundError: no cluster has this id.

        Example:
            >>> cluster = client.wait_until_ready(cid, timeout=600)  # doctest: +SKIP
            >>> cluster.job_api_url  # doctest: +SKIP
            'http://127.0.0.1:8265'
        """
        return self.wait_until(
            cluster_id, state=ClusterState.READY, timeout=timeout, on_poll=on_poll
        )


def _unreachable(current: ClusterState, wanted: ClusterState) -> bool:
    """True when a cluster in ``current`` can never get to ``wanted``."""
    if current == wanted:
        return False
    if current.is_terminal():
        return True
    # TERMINATING only leads to TERMINATED (or FAILED).
    return current == ClusterState.TERMINATING and not wanted.is_terminal()
