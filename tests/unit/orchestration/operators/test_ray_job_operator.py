"""SubmitRayJobOperator: submission ids, never twice, defer/resume, sync polling, dead clusters."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from rayline.clusters.schemas import ClusterState
from rayline.orchestration import ids
from rayline.orchestration.exceptions import RayJobApiError, RayJobFailedError
from rayline.orchestration.hooks.ray_jobs import RayJobState
from rayline.orchestration.operators.cluster_specs import cluster_summary
from rayline.orchestration.operators.ray_job import SubmitRayJobOperator
from rayline.orchestration.triggers.ray_job import RayJobTrigger
from tests.unit.orchestration.fakes import (
    DAG_ID,
    RUN_ID,
    FakeClusterManagerHook,
    FakeRayJobHook,
    FakeTI,
    context_for,
    make_cluster,
)

SPEC = {"purpose": "training", "head": {"cpus": 1}}
CREATE_KEY = ids.TaskKey(dag_id=DAG_ID, run_id=RUN_ID, task_id="create_cluster", try_number=1)


def _sid(try_number: int) -> str:
    key = ids.TaskKey(dag_id=DAG_ID, run_id=RUN_ID, task_id="train", try_number=try_number)
    return ids.submission_id(key)


class Env:
    """An operator wired to an in-memory Cluster Manager and one fake job API per URL."""

    def __init__(self) -> None:
        self.manager = FakeClusterManagerHook()
        self.apis: dict[str | None, FakeRayJobHook] = {}
        self.cluster = self.manager.add(
            make_cluster("rc-1", labels=ids.run_labels(CREATE_KEY), port=8265)
        )

    def api(
        self, url: str | None = "http://127.0.0.1:8265", cluster_id: str | None = None
    ) -> FakeRayJobHook:
        return self.apis.setdefault(url, FakeRayJobHook(url or "http://from-connection:8265"))

    def operator(self, **kwargs: Any) -> SubmitRayJobOperator:
        kwargs.setdefault("cluster", {**cluster_summary(self.cluster), "spec": SPEC})
        op = SubmitRayJobOperator(task_id="train", entrypoint="python -m job", **kwargs)
        op.__dict__["cluster_hook"] = self.manager
        op.get_hook = self.api  # type: ignore[method-assign]
        return op


def test_template_fields_are_declared() -> None:
    assert SubmitRayJobOperator.template_fields == (
        "entrypoint",
        "job_api_url",
        "cluster",
        "runtime_env",
        "metadata",
    )


def test_submits_with_a_derived_id_and_defers_to_the_trigger() -> None:
    env = Env()
    ti = FakeTI("train")
    op = env.operator(
        runtime_env={"env_vars": {"MY_VAR": "1"}, "pip": []},
        metadata={"team": "ml"},
        poll_interval=3,
    )

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(ti))

    (submitted,) = env.api().submitted
    assert submitted["submission_id"] == _sid(1)
    assert submitted["entrypoint"] == "python -m job"
    assert submitted["runtime_env"]["pip"] == []
    assert submitted["runtime_env"]["env_vars"] == {
        "AIRFLOW_CTX_DAG_ID": DAG_ID,
        "AIRFLOW_CTX_DAG_RUN_ID": RUN_ID,
        "AIRFLOW_CTX_TASK_ID": "train",
        "AIRFLOW_CTX_TRY_NUMBER": "1",
        # The job's actors address their own cluster (its GCS address).
        "RAY_ADDRESS": env.cluster.head_address,
        "MY_VAR": "1",
    }
    assert submitted["metadata"]["team"] == "ml"
    assert submitted["metadata"]["airflow_run_id"] == RUN_ID
    trigger = deferred.value.trigger
    assert isinstance(trigger, RayJobTrigger)
    assert trigger.serialize()[1] == {
        "job_api_url": "http://127.0.0.1:8265",
        "submission_id": _sid(1),
        "poll_interval": 3,
        "stream_logs": True,
        "log_offset": 0,
        "unreachable_timeout": 60.0,
        "cluster_id": "rc-1",  # the trigger asks the manager for its token, never stores it
        "rayline_conn_id": "rayline_default",
    }
    assert deferred.value.method_name == "execute_complete"
    assert ti.xcom[("train", "cluster_id")] == "rc-1"


def test_job_env_joins_the_runtime_env_without_being_a_template_field() -> None:
    env = Env()
    op = env.operator(
        runtime_env={"env_vars": {"RAYLINE_HOME": "/explicit"}},
        job_env=lambda: {"RAYLINE_S3_SECRET_ACCESS_KEY": "s3cr3t", "RAYLINE_HOME": "/settings"},
    )
    assert "job_env" not in op.template_fields

    with pytest.raises(TaskDeferred):
        op.execute(context_for(FakeTI("train")))

    env_vars = env.api().submitted[0]["runtime_env"]["env_vars"]
    assert env_vars["RAYLINE_S3_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert env_vars["RAYLINE_HOME"] == "/explicit"  # an explicit runtime_env wins


def test_the_same_try_executed_again_follows_its_job_instead_of_submitting() -> None:
    env = Env()
    env.api().add(_sid(1), "RUNNING")

    with pytest.raises(TaskDeferred) as deferred:
        env.operator().execute(context_for(FakeTI("train")))

    assert env.api().submitted == []
    assert deferred.value.trigger.submission_id == _sid(1)


def test_a_retry_follows_the_earlier_try_job_that_still_runs() -> None:
    env = Env()
    env.api().add(_sid(1), "RUNNING")

    with pytest.raises(TaskDeferred) as deferred:
        env.operator().execute(context_for(FakeTI("train", try_number=2)))

    assert env.api().submitted == []
    assert deferred.value.trigger.submission_id == _sid(1)


def test_a_retry_takes_the_result_of_an_earlier_job_that_succeeded() -> None:
    env = Env()
    env.api().add(_sid(1), "SUCCEEDED", logs='done\nRAYLINE_RESULT {"version": 3}\n')
    ti = FakeTI("train", try_number=2)

    result = env.operator().execute(context_for(ti))

    assert env.api().submitted == []
    assert result["submission_id"] == _sid(1)
    assert result["result"] == {"version": 3}
    assert ti.xcom[("train", "job_result")] == {"version": 3}


def test_a_retry_after_a_failed_job_submits_a_new_one() -> None:
    env = Env()
    env.api().add(_sid(1), "FAILED")

    with pytest.raises(TaskDeferred):
        env.operator().execute(context_for(FakeTI("train", try_number=2)))

    assert [s["submission_id"] for s in env.api().submitted] == [_sid(2)]


def test_a_submit_whose_answer_was_lost_is_not_repeated() -> None:
    env = Env()
    api = env.api()

    def lost_answer(**kwargs: Any) -> str:
        api.add(kwargs["submission_id"], "RUNNING")
        raise RayJobApiError("connection reset")

    api.submit_job = lost_answer  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred) as deferred:
        env.operator().execute(context_for(FakeTI("train")))
    assert deferred.value.trigger.submission_id == _sid(1)


def _event(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "message": extra.pop("message", "ok"),
        "submission_id": _sid(1),
        "job_api_url": "http://127.0.0.1:8265",
        "job_status": extra.pop("job_status", "SUCCEEDED"),
        "log_offset": extra.pop("log_offset", 0),
    }


def test_execute_complete_writes_the_rest_of_the_log_and_returns_the_result() -> None:
    env = Env()
    env.api().add(_sid(1), "SUCCEEDED", logs='a\nRAYLINE_RESULT {"version": 7}\n')
    ti = FakeTI("train")
    ti.xcom_push("cluster_id", "rc-1")

    result = env.operator().execute_complete(context_for(ti), _event("success", log_offset=2))

    assert result == {
        "submission_id": _sid(1),
        "job_api_url": "http://127.0.0.1:8265",
        "cluster_id": "rc-1",
        "status": "SUCCEEDED",
        "result": {"version": 7},
        "job_seconds": 12.5,
    }
    assert ti.xcom[("train", "job_result")] == {"version": 7}


def test_execute_complete_raises_with_the_jobs_error() -> None:
    env = Env()
    logs = 'oops\nRAYLINE_ERROR {"error": "DatasetError", "message": "no rows in data.csv"}\n'
    env.api().add(_sid(1), "FAILED", logs=logs)
    message = (
        "Job entrypoint command failed with exit code 2, last available logs (truncated to "
        "20,000 chars):\noops\nRAYLINE_ERROR {...}\n (exit code 2)"
    )
    event = _event("error", job_status="FAILED", message=message)

    with pytest.raises(RayJobFailedError) as failed:
        env.operator().execute_complete(context_for(FakeTI("train")), event)

    assert str(failed.value).startswith(
        f"Ray job {_sid(1)} ended FAILED: Job entrypoint command failed with exit code 2; "
        "the job said: DatasetError: no rows in data.csv; its log is above"
    )
    assert failed.value.status == "FAILED"


@pytest.mark.parametrize(("exit_code", "retried"), [(2, False), (1, True), (None, True)])
def test_bad_input_exit_codes_fail_without_retries(exit_code: int | None, retried: bool) -> None:
    env = Env()
    env.api().add(_sid(1), "FAILED", logs="")
    event = {**_event("error", job_status="FAILED", message="failed"), "exit_code": exit_code}

    with pytest.raises(RayJobFailedError) as failed:
        env.operator(no_retry_exit_codes=[2]).execute_complete(context_for(FakeTI("train")), event)

    assert isinstance(failed.value, AirflowFailException) is not retried
    if not retried:
        assert "means bad input, so no retry" in str(failed.value)


class ScriptedApi(FakeRayJobHook):
    """A job whose status moves along a script, one step per poll."""

    def __init__(self, statuses: list[str], logs: str) -> None:
        super().__init__()
        self.script = list(statuses)
        self.final_logs = logs

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted.append(kwargs)
        return str(kwargs["submission_id"])

    def get_job_state(self, submission_id: str) -> RayJobState | None:
        if not self.submitted:
            return None
        status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return RayJobState(
            submission_id,
            status,
            "Job failed" if status == "FAILED" else "",
            None,
            1 if status == "FAILED" else None,
        )

    def get_job_logs(self, submission_id: str) -> str:
        return self.final_logs


@pytest.mark.parametrize("succeeds", [True, False])
def test_sync_mode_polls_until_the_job_ends(succeeds: bool) -> None:
    env = Env()
    env.apis["http://127.0.0.1:8265"] = ScriptedApi(
        ["PENDING", "RUNNING", "SUCCEEDED" if succeeds else "FAILED"], "step\nRAYLINE_RESULT {}\n"
    )
    op = env.operator(deferrable=False, poll_interval=0)

    if succeeds:
        assert op.execute(context_for(FakeTI("train")))["status"] == "SUCCEEDED"
    else:
        with pytest.raises(RayJobFailedError, match=r"Job failed \(exit code 1\)"):
            op.execute(context_for(FakeTI("train")))


def test_a_short_job_ends_on_the_worker_without_deferring() -> None:
    env = Env()
    env.apis["http://127.0.0.1:8265"] = ScriptedApi(
        ["PENDING", "RUNNING", "SUCCEEDED"], 'step\nRAYLINE_RESULT {"version": 3}\n'
    )
    op = env.operator(defer_after=30, poll_interval=0)

    done = op.execute(context_for(FakeTI("train")))

    assert done["status"] == "SUCCEEDED" and done["result"] == {"version": 3}


def test_a_job_still_running_after_defer_after_is_deferred_past_the_log_written() -> None:
    env = Env()
    env.apis["http://127.0.0.1:8265"] = ScriptedApi(["RUNNING"], "line one\nline two\n")
    op = env.operator(defer_after=0.05, poll_interval=0.01)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(FakeTI("train")))

    trigger = deferred.value.trigger
    assert isinstance(trigger, RayJobTrigger)
    assert trigger.log_offset == len("line one\nline two\n")  # not written twice


def test_a_retry_replaces_a_dead_cluster_keeping_its_labels() -> None:
    env = Env()
    env.manager.clusters["rc-1"] = env.cluster.model_copy(
        update={"state": ClusterState.FAILED, "reason": "head died", "job_api_url": None}
    )
    ti = FakeTI("train", try_number=2)

    with pytest.raises(TaskDeferred) as deferred:
        env.operator().execute(context_for(ti))

    (replacement_spec,) = env.manager.specs
    assert replacement_spec.labels[ids.LABEL_TASK] == "create_cluster"  # the teardown finds it
    assert replacement_spec.labels["rayline-replaces"] == "rc-1"
    assert replacement_spec.request_id.endswith("-t2")
    new_url = deferred.value.trigger.job_api_url
    assert new_url != "http://127.0.0.1:8265"
    assert env.api(new_url).submitted[0]["submission_id"] == _sid(2)
    (replacement,) = env.manager.live_clusters({})
    assert replacement.id != "rc-1" and replacement.job_api_url == new_url
    assert ti.xcom[("train", "cluster_id")] == replacement.id
    assert "rc-1" in env.manager.deleted


def test_a_dead_cluster_without_a_spec_is_an_error_naming_the_fix() -> None:
    env = Env()
    env.manager.clusters["rc-1"] = env.cluster.model_copy(update={"state": ClusterState.TERMINATED})
    op = env.operator(cluster=cluster_summary(env.cluster))

    with pytest.raises(AirflowException, match="cannot run the job: cluster rc-1 is TERMINATED"):
        op.execute(context_for(FakeTI("train", try_number=2)))


def test_job_api_url_alone_needs_no_cluster_manager() -> None:
    env = Env()
    op = env.operator(cluster=None, job_api_url="http://192.0.2.5:8265")

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(FakeTI("train")))

    assert deferred.value.trigger.job_api_url == "http://192.0.2.5:8265"


def test_the_job_hook_carries_the_clusters_token_from_the_manager() -> None:
    manager = FakeClusterManagerHook()
    op = SubmitRayJobOperator(task_id="t", entrypoint="true", job_api_url="http://x:1")
    op.__dict__["cluster_hook"] = manager
    hook = op.get_hook("http://127.0.0.1:8265", "rc-7")
    assert hook._resolve_token() == manager.token_of("rc-7")
    assert op.get_hook("http://127.0.0.1:8265")._resolve_token() is None
