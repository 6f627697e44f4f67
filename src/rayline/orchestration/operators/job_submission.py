"""Submitting a task's Ray job at most once per try, and never beside a live earlier one.

The submission id derives from the DAG run, task and try number
(`rayline.orchestration.ids.submission_id`), so the same try executed again
finds its job, and a retry can find the jobs of earlier tries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayline.orchestration import ids
from rayline.orchestration.exceptions import RayJobApiError
from rayline.orchestration.hooks.ray_jobs import RayJobHook, RayJobState
from rayline.orchestration.operators.job_logs import TaskLog

__all__ = [
    "airflow_env_vars",
    "airflow_metadata",
    "find_job_to_follow",
    "job_runtime_env",
    "submit_once",
]

_ACTIVE = frozenset({"PENDING", "RUNNING"})


def find_job_to_follow(
    hook: RayJobHook, key: ids.TaskKey, *, log: TaskLog
) -> tuple[str, RayJobState | None]:
    """This try's job, or the job of an earlier try that still runs or succeeded.

    Returns:
        The submission id and the job's state; a None state means there is no
        job worth following, and a new one is to be submitted under that id.
    """
    submission_id = ids.submission_id(key)
    state = hook.get_job_state(submission_id)
    if state is not None:
        log.info("Ray job %s exists already (%s); following it", submission_id, state.status)
        return submission_id, state
    for try_number in range(key.try_number - 1, 0, -1):
        earlier = ids.submission_id(key.with_try(try_number))
        state = hook.get_job_state(earlier)
        if state is None:
            continue
        if state.status in _ACTIVE or state.succeeded:
            log.info(
                "Ray job %s of try %d is %s; following it instead of submitting again",
                earlier,
                try_number,
                state.status,
            )
            return earlier, state
        log.info("Ray job %s of try %d ended %s", earlier, try_number, state.status)
        break
    return submission_id, None


def submit_once(hook: RayJobHook, *, submission_id: str, log: TaskLog, **submit_args: Any) -> None:
    """Submit the job; a submit whose answer was lost but which reached Ray counts.

    Raises:
        RayJobApiError: the job API refused the job or did not answer, and no job
            with this id exists.
    """
    try:
        hook.submit_job(submission_id=submission_id, **submit_args)
    except RayJobApiError:
        if hook.get_job_state(submission_id) is None:
            raise
        log.info("Ray job %s was submitted after all", submission_id)


def airflow_env_vars(key: ids.TaskKey) -> dict[str, str]:
    """Airflow's context variables, so the job knows the run it belongs to."""
    return {
        "AIRFLOW_CTX_DAG_ID": key.dag_id,
        "AIRFLOW_CTX_DAG_RUN_ID": key.run_id,
        "AIRFLOW_CTX_TASK_ID": key.task_id,
        "AIRFLOW_CTX_TRY_NUMBER": str(key.try_number),
    }


def airflow_metadata(key: ids.TaskKey) -> dict[str, str]:
    """The Airflow ids stored as the job's metadata (``airflow_dag_id`` ...)."""
    ids_ = {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id}
    ids_["try_number"] = str(key.try_number)
    return {f"airflow_{name}": value for name, value in ids_.items()}


def job_runtime_env(
    given: Mapping[str, Any],
    key: ids.TaskKey,
    *,
    ray_address: str,
    job_env: Mapping[str, str],
) -> dict[str, Any]:
    """The job's runtime env: the given one plus Airflow's context variables (so the
    job knows its run), the job's own variables and ``RAY_ADDRESS`` (so the job's
    actors find their own cluster, see `rayline.jobs.env`). Given ``env_vars`` win.
    """
    env = dict(given)
    env["env_vars"] = {
        **airflow_env_vars(key),
        "RAY_ADDRESS": ray_address,
        **dict(job_env),
        **dict(env.get("env_vars") or {}),
    }
    return env
