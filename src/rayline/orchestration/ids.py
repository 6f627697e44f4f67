"""Deterministic names for what a task creates: Ray submission ids, cluster request ids, labels.

Every name derives from the DAG run, the task and the try number, so:

- the same try executed twice (resumed after deferral, or its HTTP call retried)
  asks for the same cluster and finds the same Ray job instead of making a second;
- a retry (a new try number) gets a new cluster and a new job;
- a retry can compute the ids of the earlier tries and look at what they left.

No Airflow import here: these are plain functions, easy to test and to reuse.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "LABEL_DAG",
    "LABEL_RUN",
    "LABEL_TASK",
    "TaskKey",
    "cluster_name",
    "cluster_request_id",
    "made_in_run",
    "run_labels",
    "submission_id",
]

LABEL_DAG = "airflow-dag-id"
LABEL_RUN = "airflow-run"
LABEL_TASK = "airflow-task-id"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE_MAX = 63


class TaskKey:
    """Which try of which task of which DAG run: the input of every derived name.

    Args:
        dag_id: the DAG id.
        run_id: the DAG run id (may hold ``:``, ``+`` and other characters).
        task_id: the task id.
        try_number: the try, 1 for the first.
        map_index: the index of a mapped task, -1 otherwise.
    """

    __slots__ = ("dag_id", "map_index", "run_id", "task_id", "try_number")

    def __init__(
        self, *, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = map_index

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskKey:
        """Read the key from an Airflow task context."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=int(ti.try_number),
            map_index=-1 if map_index is None else int(map_index),
        )

    def with_try(self, try_number: int) -> TaskKey:
        """The same task in another try."""
        return TaskKey(
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=self.task_id,
            try_number=try_number,
            map_index=self.map_index,
        )

    def run_hash(self) -> str:
        """12 hex digits naming the DAG run (run ids are long and full of odd characters)."""
        return _digest(self.dag_id, self.run_id)

    def task_hash(self) -> str:
        """12 hex digits naming this task (and map index) in this DAG run, any try."""
        return _digest(self.dag_id, self.run_id, self.task_id, str(self.map_index))

    def __repr__(self) -> str:
        return (
            f"TaskKey(dag_id={self.dag_id!r}, run_id={self.run_id!r}, task_id={self.task_id!r}, "
            f"try_number={self.try_number}, map_index={self.map_index})"
        )


def submission_id(key: TaskKey, *, prefix: str = "af") -> str:
    """The Ray job submission id of one try of a task.

    Readable start (DAG and task), a hash for uniqueness, the try at the end:
    ``af-rayline_train_and_serve-train-3f9c0a1b2c4d-t2``. Only letters, digits,
    ``-`` and ``_``, because Ray puts it in file names and URL paths.

    Args:
        key: the task try.
        prefix: what the id starts with.
    """
    dag, task = _slug(key.dag_id, 40), _slug(key.task_id, 40)
    return f"{prefix}-{dag}-{task}-{key.task_hash()}-t{key.try_number}"


def cluster_request_id(key: TaskKey) -> str:
    """The Cluster Manager idempotency key of one try of a task (same shape as submission ids)."""
    return submission_id(key, prefix="af")


def cluster_name(key: TaskKey) -> str:
    """A cluster name (a DNS label, at most 63 characters) for one try of a task."""
    tail = f"-{key.task_hash()[:8]}-t{key.try_number}"
    stem = _NOT_DNS.sub("-", key.task_id.lower()).strip("-") or "cluster"
    return (stem[: 63 - len(tail)].rstrip("-") or "c") + tail


def run_labels(key: TaskKey) -> dict[str, str]:
    """Labels that tie a cluster to the DAG run and task that asked for it (any try).

    A teardown finds every cluster a task made in this run (every try, and
    replacements made by later tasks) by these labels.
    """
    return {
        LABEL_DAG: key.dag_id[:_LABEL_VALUE_MAX],
        LABEL_RUN: key.run_hash(),
        LABEL_TASK: key.task_id[:_LABEL_VALUE_MAX],
    }


def made_in_run(labels: Mapping[str, str], key: TaskKey) -> bool:
    """Whether a cluster with these labels was requested in ``key``'s DAG run.

    A model's serving cluster is reused by later runs: only the run that made
    it may delete it on failure, the others leave it to its live deployment.
    """
    return labels.get(LABEL_RUN) == key.run_hash()


def _slug(value: str, limit: int) -> str:
    return _UNSAFE.sub("-", value).strip("-")[:limit] or "x"


def _digest(*parts: str) -> str:
    # NUL-separated so ("ab", "c") and ("a", "bc") differ.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
