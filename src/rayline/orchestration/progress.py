"""Follow a workflow run's steps from the metadata store while the run goes on.

The DAG's step callbacks (`rayline.orchestration.recording`) record every task try;
`StepFollower` polls those records from a background thread and reports each step
as it starts and ends, whoever runs the DAG (``dag.test()`` in this process, or
Airflow's scheduler elsewhere).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from rayline.metadata.db import session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import WorkflowRun, WorkflowStep

__all__ = ["StepEvent", "StepFollower", "run_record"]


@dataclass(frozen=True)
class StepEvent:
    """A step try that started or ended."""

    name: str
    try_number: int
    status: WorkflowStatus
    seconds: float | None
    error: str | None


class StepFollower:
    """Report the steps of the newest run of ``dag_id`` begun at or after ``since``.

    Args:
        engine: the metadata store the run is recorded in.
        dag_id: the DAG whose run to follow.
        since: ignore runs that started before this moment (timezone-aware).
        report: called once per step try when it starts and once when it ends.
        interval: seconds between polls.
        run_id: Airflow's id of the run to follow, when known (with several runs at
            once, the newest one begun after ``since`` may be another's).
    """

    def __init__(
        self,
        engine: Engine,
        dag_id: str,
        since: datetime,
        report: Callable[[StepEvent], None],
        *,
        interval: float = 1.0,
        run_id: str | None = None,
    ) -> None:
        self._engine = engine
        self._run_id = run_id
        self._dag_id = dag_id
        self._since = since
        self._report = report
        self._interval = interval
        self._seen: dict[int, WorkflowStatus] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="step-follower", daemon=True)

    def __enter__(self) -> StepFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()  # the last steps, ended after the final poll of the loop

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # a busy SQLite must not end the follower
                continue

    def poll(self) -> None:
        """Report what changed since the last poll."""
        with session_scope(self._engine) as session:
            query = select(WorkflowRun.id).where(
                WorkflowRun.dag_id == self._dag_id, WorkflowRun.started_at >= self._since
            )
            if self._run_id is not None:
                query = query.where(WorkflowRun.external_run_id == self._run_id)
            run_id = session.scalar(query.order_by(WorkflowRun.id.desc()).limit(1))
            if run_id is None:
                return
            steps = session.scalars(
                select(WorkflowStep).where(WorkflowStep.run_id == run_id).order_by(WorkflowStep.id)
            ).all()
            events = [self._event(step) for step in steps if self._changed(step)]
        for event in events:
            self._report(event)

    def _changed(self, step: WorkflowStep) -> bool:
        if self._seen.get(step.id) == step.status:
            return False
        self._seen[step.id] = step.status
        return True

    @staticmethod
    def _event(step: WorkflowStep) -> StepEvent:
        seconds = (
            (step.finished_at - step.started_at).total_seconds()
            if step.started_at and step.finished_at
            else None
        )
        return StepEvent(step.name, step.try_number, step.status, seconds, step.error)


def run_record(
    engine: Engine, dag_id: str, run_id: str, *, wait_for_end: float = 0
) -> WorkflowRun | None:
    """Our record of the run (detached, steps loaded), once it has ended.

    Args:
        wait_for_end: seconds to wait for the record to end (the DAG's failure
            callback writes the error after Airflow marked the run failed).
    """
    query = (
        select(WorkflowRun)
        .options(selectinload(WorkflowRun.steps))
        .where(WorkflowRun.dag_id == dag_id, WorkflowRun.external_run_id == run_id)
    )
    deadline = time.monotonic() + wait_for_end
    while True:
        with session_scope(engine) as session:
            record = session.scalars(query).one_or_none()
            session.expunge_all()
        if (record is not None and record.finished_at is not None) or time.monotonic() >= deadline:
            return record
        time.sleep(1)
