"""One deploy of a model at a time, across processes and hosts.

With ZooKeeper configured (``RAYLINE_ZOOKEEPER_HOSTS``), a deploy or rollback
holds the model's ``deploy-<model>`` lock from choosing the version to retiring
the old one, so two concurrent deploys of one model, from any hosts, run one
after the other and never leave two versions LIVE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rayline.serving.errors import DeploymentFailedError

if TYPE_CHECKING:
    from rayline.config import Settings
    from rayline.coordination.locks import LockLease

__all__ = ["DEPLOY_LOCK_TIMEOUT_SECONDS", "DeployLocks"]

#: How long a deploy waits for another deploy of its model
#: (one that builds an image may take many minutes).
DEPLOY_LOCK_TIMEOUT_SECONDS = 3600.0


class DeployLocks:
    """The deploy locks one deployer holds, re-entrant per model.

    Args:
        settings: Where ZooKeeper is (without it the lock is this process's).
        progress: Told while waiting for another deploy.
    """

    def __init__(self, settings: Settings, progress: Callable[[str], None]) -> None:
        self._settings = settings
        self._progress = progress
        # Models whose deploy lock is held here, with the lock's lease.
        self._held: dict[str, LockLease] = {}

    @contextlib.contextmanager
    def hold(self, model: str) -> Iterator[None]:
        """Hold ``deploy-<model>`` across replicas and hosts.

        Re-entrant (a rollback deploys under its own lock).

        Raises:
            DeploymentFailedError: The lock could not be taken (ZooKeeper down, or
                another deploy held it past the timeout); nothing was started.
        """
        if model in self._held:
            yield
            return
        from rayline.coordination import CoordinationUnavailableError
        from rayline.coordination.locks import LockHeldError, held_lock

        with contextlib.ExitStack() as stack:
            try:
                lease = stack.enter_context(
                    held_lock(
                        self._settings,
                        f"deploy-{model}",
                        timeout=DEPLOY_LOCK_TIMEOUT_SECONDS,
                        waiting=self._progress,
                        holder=f"deploying {model}",
                    )
                )
            except (CoordinationUnavailableError, LockHeldError) as err:
                raise DeploymentFailedError(
                    f"not deploying {model}: {err}; nothing was started, what serves goes on"
                ) from err
            self._held[model] = lease
            try:
                yield
            finally:
                self._held.pop(model, None)

    def check(self, model: str) -> None:
        """Go live only while still holding the model's lock.

        Raises:
            DeploymentFailedError: the ZooKeeper session holding it expired meanwhile,
                so another deploy may hold it now; this one must not undo that.
        """
        lease = self._held.get(model)
        if lease is not None and lease.lost:
            raise DeploymentFailedError(
                f"lost the deploy lock of {model} while starting (its ZooKeeper session "
                "expired); this version is stopped so that another deploy holding the "
                "lock now is not undone, what served before goes on"
            )
