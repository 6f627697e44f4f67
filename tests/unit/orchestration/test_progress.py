"""StepFollower: each step try reported once when it starts and once when it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from rayline.metadata.enums import WorkflowStatus
from rayline.orchestration import recording
from rayline.orchestration.progress import StepEvent, StepFollower
from tests.unit.orchestration.fakes import DAG_ID, RUN_ID, FakeTI


class Task:
    """Only its type name is recorded."""


def _context(ti: FakeTI, **extra: Any) -> dict[str, Any]:
    return {"ti": ti, "task": Task(), "params": {}, **extra}


def test_each_try_is_reported_when_it_starts_and_when_it_ends(engine: Engine) -> None:
    events: list[StepEvent] = []
    follower = StepFollower(engine, DAG_ID, datetime.now(UTC) - timedelta(seconds=5), events.append)

    follower.poll()  # no run yet
    first = FakeTI("train")
    recording.step_started(_context(first))
    follower.poll()
    follower.poll()  # nothing new
    recording.step_failed(_context(first, exception=RuntimeError("head died")))
    second = FakeTI("train", try_number=2)
    recording.step_started(_context(second))
    recording.step_succeeded(_context(second))
    follower.poll()

    seen = [(e.name, e.try_number, e.status) for e in events]
    assert seen == [
        ("train", 1, WorkflowStatus.RUNNING),
        ("train", 1, WorkflowStatus.FAILED),
        ("train", 2, WorkflowStatus.SUCCESS),
    ]
    assert events[1].error is not None and "head died" in events[1].error
    assert events[2].seconds is not None and events[2].seconds >= 0


def test_runs_begun_before_the_follower_are_ignored(engine: Engine) -> None:
    recording.step_started(_context(FakeTI("train")))
    events: list[StepEvent] = []

    with StepFollower(engine, DAG_ID, datetime.now(UTC) + timedelta(hours=1), events.append):
        pass

    assert events == []


def test_the_thread_reports_the_last_steps_on_exit(engine: Engine) -> None:
    events: list[StepEvent] = []
    since = datetime.now(UTC) - timedelta(seconds=5)
    with StepFollower(engine, DAG_ID, since, events.append, interval=60):
        recording.step_succeeded(_context(FakeTI("record_run")))

    assert [(e.name, e.status) for e in events] == [("record_run", WorkflowStatus.SUCCESS)]


def test_a_named_run_is_followed_and_no_other(engine: Engine) -> None:
    recording.step_started(_context(FakeTI("train")))  # run RUN_ID
    events: list[StepEvent] = []
    since = datetime.now(UTC) - timedelta(seconds=5)

    StepFollower(engine, DAG_ID, since, events.append, run_id="another-run").poll()
    assert events == []
    StepFollower(engine, DAG_ID, since, events.append, run_id=RUN_ID).poll()
    assert [e.name for e in events] == ["train"]
