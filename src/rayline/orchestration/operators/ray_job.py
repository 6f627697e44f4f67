"""An operator that submits a Ray job, follows it to the end and shows its logs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, XComArg
from pydantic import BaseModel

from rayline.jobs.output import AnyResult, failure_message, read_output
from rayline.orchestration import ids
from rayline.orchestration.exceptions import RayJobFailedError, RayJobRefusedError
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.hooks.ray_jobs import RayJobHook, RayJobState
from rayline.orchestration.operators.job_logs import (
    JobLogWriter,
    follow_on_worker,
    job_seconds,
    no_retry_reason,
)
from rayline.orchestration.operators.job_submission import (
    airflow_metadata,
    find_job_to_follow,
    job_runtime_env,
    submit_once,
)
from rayline.orchestration.operators.job_target import JobTarget, resolve_cluster_target
from rayline.orchestration.operators.rendering import rendered_mapping
from rayline.orchestration.triggers.ray_job import RayJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SubmitRayJobOperator"]


class SubmitRayJobOperator(BaseOperator):
    """Submit a job to a Ray cluster and follow it until it ends, writing its log to the task log.

    The submission id derives from the DAG run, task and try number. Executing the
    same try again finds its job instead of submitting twice; a retry first looks
    at the jobs of earlier tries on the cluster and follows one that is still
    running or already succeeded, and submits a new job only when the last one
    failed. So a retried task never runs the job twice at once.

    Give the cluster either as ``job_api_url`` or as ``cluster``, the XCom of a
    `CreateRayClusterOperator`. With ``cluster``, the cluster is looked up first:
    if it died (its head was killed, say) and ``replace_dead_cluster`` is set, a
    replacement with the same spec and labels is requested, so the task's retry
    runs on a live cluster and the original teardown still deletes it.

    A job hands a result to Airflow by printing ``RAYLINE_RESULT {"key": ...}``;
    the last such line is pushed to XCom as ``job_result``. Returns (XCom)
    ``submission_id``, ``job_api_url``, ``cluster_id``, ``status`` and ``result``.

    :param entrypoint: the shell command the job runs. (templated)
    :param job_api_url: the cluster's job API URL, e.g. ``http://127.0.0.1:8265``. (templated)
    :param cluster: the XCom value of a `CreateRayClusterOperator`, e.g. its
        ``.output``. (templated)
    :param runtime_env: Ray's runtime environment of the job. (templated)
    :param metadata: string metadata stored with the job; the Airflow ids are
        added. (templated)
    :param entrypoint_num_cpus: CPUs reserved for the entrypoint process.
    :param entrypoint_resources: custom resources reserved for the entrypoint.
    :param replace_dead_cluster: with ``cluster``, request a replacement when it died.
    :param cluster_ready_timeout: seconds to wait for the (replacement) cluster.
    :param rayline_conn_id: the Rayline connection of the Cluster Manager.
    :param ray_conn_id: the Ray connection used when neither ``cluster`` nor
        ``job_api_url`` is given.
    :param deferrable: follow the job in the triggerer (the default) instead of
        on a worker.
    :param defer_after: with ``deferrable``, seconds to follow the job on the worker
        before deferring. A job that ends sooner finishes the task there: resuming a
        deferred task costs seconds of the scheduler's and a new task process's
        time, more than a short job takes. 0: defer at once.
    :param poll_interval: seconds between two status checks.
    :param stream_logs: write the job's log lines as they come; otherwise only
        at the end.
    :param unreachable_timeout: seconds the job API may stay unreachable before
        the task fails.
    :param job_timeout: seconds the job may take before the task fails; None for
        no limit.
    :param job_env: called on the worker at submit time; its variables join the
        job's ``runtime_env``. For secrets (store credentials): unlike
        ``runtime_env``, they are never rendered as a template field nor logged.
    :param no_retry_exit_codes: entrypoint exit codes that mean "bad input, trying
        again cannot help": the task then fails without using its retries.
    :param no_retry_errors: error kinds a job reports in its ``RAYLINE_ERROR`` line
        (e.g. ``ImageBuildError``) that fail the same way every time: the task
        then fails without using its retries.
    """

    template_fields: Sequence[str] = (
        "entrypoint",
        "job_api_url",
        "cluster",
        "runtime_env",
        "metadata",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = dict.fromkeys(
        ("runtime_env", "cluster", "metadata"), "json"
    )
    ui_color = "#d6f5d6"
    #: The model of the job's ``RAYLINE_RESULT``; any JSON object by default.
    result_type: ClassVar[type[BaseModel]] = AnyResult

    def __init__(
        self,
        *,
        entrypoint: str,
        job_api_url: str | None = None,
        cluster: Mapping[str, Any] | str | XComArg | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_resources: Mapping[str, float] | None = None,
        replace_dead_cluster: bool = True,
        cluster_ready_timeout: float = 600,
        rayline_conn_id: str = ClusterManagerHook.default_conn_name,
        ray_conn_id: str = RayJobHook.default_conn_name,
        deferrable: bool = True,
        defer_after: float = 0.0,
        poll_interval: float = 5.0,
        stream_logs: bool = True,
        unreachable_timeout: float = 60.0,
        job_timeout: float | None = None,
        job_env: Callable[[], Mapping[str, str]] | None = None,
        no_retry_exit_codes: Collection[int] = (),
        no_retry_errors: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entrypoint = entrypoint
        self.job_api_url = job_api_url
        self.cluster = cluster
        self.runtime_env = runtime_env
        self.metadata = metadata
        self.entrypoint_num_cpus = entrypoint_num_cpus
        self.entrypoint_resources = entrypoint_resources
        self.replace_dead_cluster = replace_dead_cluster
        self.cluster_ready_timeout = cluster_ready_timeout
        self.rayline_conn_id = rayline_conn_id
        self.ray_conn_id = ray_conn_id
        self.deferrable = deferrable
        self.defer_after = defer_after
        self.poll_interval = poll_interval
        self.stream_logs = stream_logs
        self.unreachable_timeout = unreachable_timeout
        self.job_timeout = job_timeout
        self.job_env = job_env
        self.no_retry_exit_codes = frozenset(no_retry_exit_codes)
        self.no_retry_errors = frozenset(no_retry_errors)
        self._followed: tuple[RayJobHook, str] | None = None

    @cached_property
    def cluster_hook(self) -> ClusterManagerHook:
        """The Cluster Manager hook of ``rayline_conn_id``."""
        return ClusterManagerHook(self.rayline_conn_id)

    def get_hook(self, job_api_url: str | None, cluster_id: str | None = None) -> RayJobHook:
        """One cluster's Ray job hook (``ray_conn_id`` when the URL is None), with
        the cluster's Ray token from the manager when ``cluster_id`` is given."""
        token = None
        if cluster_id is not None and job_api_url:
            token = self.cluster_hook.get_cluster_credentials(cluster_id).ray_auth_token
        return RayJobHook(job_api_url, ray_conn_id=self.ray_conn_id, auth_token=token)

    def build_entrypoint(self, context: Context, *, cluster_id: str | None) -> str:
        """The shell command of the job; subclasses build it from their own fields.

        Args:
            context: the task context.
            cluster_id: the Rayline cluster the job runs on, when known.
        """
        return self.entrypoint

    def build_job_env(self, context: Context) -> Mapping[str, str]:
        """Variables for the job's ``runtime_env`` kept out of templates (secrets).

        The default calls ``job_env``; subclasses build their job's environment.
        """
        return self.job_env() if self.job_env is not None else {}

    def job_succeeded(self, context: Context, outcome: dict[str, Any]) -> dict[str, Any]:
        """Called once the job succeeded with the XCom value; subclasses add to it."""
        return outcome

    # ------------------------------------------------------------ execution
    def execute(self, context: Context) -> dict[str, Any]:
        key = ids.TaskKey.from_context(context)
        target = self._resolve_target(context, key)
        hook = self.get_hook(target.job_api_url, target.cluster_id)
        submission_id, state = self._find_or_submit(context, hook, key, target)
        if state is not None and state.is_terminal:
            return self._finish(
                context,
                hook,
                submission_id,
                target,
                state.status,
                state.message,
                0,
                exit_code=state.driver_exit_code,
            )
        offset = 0
        if not self.deferrable or self.defer_after > 0:
            limit = self.defer_after if self.deferrable else None
            finished, offset = self._follow(context, hook, submission_id, target, wait_limit=limit)
            if finished is not None:
                return finished
            self.log.info("Ray job %s still runs after %g s; deferring", submission_id, limit)
        # execute_complete reads the cluster back from XCom: defer kwargs are not
        # passed on by every runner (dag.test() in Airflow 3.3 drops them).
        context["ti"].xcom_push(key="cluster_id", value=target.cluster_id)
        self.defer(
            trigger=RayJobTrigger(
                job_api_url=hook.address,
                submission_id=submission_id,
                poll_interval=self.poll_interval,
                stream_logs=self.stream_logs,
                log_offset=offset,
                unreachable_timeout=self.unreachable_timeout,
                cluster_id=target.cluster_id,
                rayline_conn_id=self.rayline_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.job_timeout) if self.job_timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: write the rest of the log, then succeed or raise."""
        ti = context["ti"]
        cluster_id = ti.xcom_pull(task_ids=ti.task_id, key="cluster_id")
        hook = self.get_hook(event["job_api_url"], cluster_id)
        target = JobTarget(event["job_api_url"], cluster_id)
        status = event.get("job_status") or "UNKNOWN"
        if event["status"] != "success" and status == "SUCCEEDED":
            status = "UNKNOWN"  # an error event never means success
        return self._finish(
            context,
            hook,
            event["submission_id"],
            target,
            status,
            event["message"],
            event.get("log_offset", 0),
            exit_code=event.get("exit_code"),
        )

    def on_kill(self) -> None:
        """Stop the Ray job this task is following on a worker."""
        if self._followed is not None:
            hook, submission_id = self._followed
            self.log.info("Stopping Ray job %s", submission_id)
            hook.stop_job(submission_id)

    # ------------------------------------------------------------ cluster
    def _resolve_target(self, context: Context, key: ids.TaskKey) -> JobTarget:
        """Find the job API to submit to; replace a dead cluster when allowed."""
        if self.cluster is None:
            return JobTarget(self.job_api_url or None, None)

        def announce(cluster_id: str) -> None:
            # Pushed at once: execute_complete and the teardown look for it there.
            context["ti"].xcom_push(key="cluster_id", value=cluster_id)

        return resolve_cluster_target(
            self.cluster_hook,
            rendered_mapping(self.cluster),
            key=key,
            log=self.log,
            ready_timeout=self.cluster_ready_timeout,
            replace_dead=self.replace_dead_cluster,
            on_replacement=announce,
        )

    # ------------------------------------------------------------ job
    def _find_or_submit(
        self, context: Context, hook: RayJobHook, key: ids.TaskKey, target: JobTarget
    ) -> tuple[str, RayJobState | None]:
        """Return this try's job, an earlier try's job worth following, or a new job."""
        submission_id, state = find_job_to_follow(hook, key, log=self.log)
        if state is not None:
            return submission_id, state
        entrypoint = self.build_entrypoint(context, cluster_id=target.cluster_id)
        self.log.info("Submitting Ray job %s to %s: %s", submission_id, hook.address, entrypoint)
        submit_once(
            hook,
            submission_id=submission_id,
            log=self.log,
            entrypoint=entrypoint,
            runtime_env=job_runtime_env(
                rendered_mapping(self.runtime_env) if self.runtime_env else {},
                key,
                ray_address=target.ray_address or hook.address,
                job_env=self.build_job_env(context),
            ),
            metadata={
                **airflow_metadata(key),
                **{str(k): str(v) for k, v in rendered_mapping(self.metadata or {}).items()},
            },
            entrypoint_num_cpus=self.entrypoint_num_cpus,
            entrypoint_resources=dict(self.entrypoint_resources or {}) or None,
        )
        return submission_id, None

    def _follow(
        self,
        context: Context,
        hook: RayJobHook,
        submission_id: str,
        target: JobTarget,
        *,
        wait_limit: float | None = None,
    ) -> tuple[dict[str, Any] | None, int]:
        """Follow the job on the worker, writing its log as it comes.

        Returns:
            The task's result once the job ended (None when ``wait_limit`` seconds
            passed first), and the characters of the log written so far.
        """
        self._followed = (hook, submission_id)
        state, offset = follow_on_worker(
            hook,
            submission_id,
            log=self.log,
            poll_interval=self.poll_interval,
            unreachable_timeout=self.unreachable_timeout,
            job_timeout=None if wait_limit is not None else self.job_timeout,
            stream_logs=self.stream_logs,
            wait_limit=wait_limit,
        )
        self._followed = None
        if state is None:
            return None, offset
        message = state.message
        if state.driver_exit_code is not None and not state.succeeded:
            message += f" (exit code {state.driver_exit_code})"
        result = self._finish(
            context,
            hook,
            submission_id,
            target,
            state.status,
            message,
            offset,
            exit_code=state.driver_exit_code,
        )
        return result, offset

    def _finish(
        self,
        context: Context,
        hook: RayJobHook,
        submission_id: str,
        target: JobTarget,
        status: str,
        message: str,
        offset: int,
        *,
        exit_code: int | None = None,
    ) -> dict[str, Any]:
        """Write what is left of the log, check the status, build the XCom value."""
        logs = JobLogWriter(hook, submission_id, self.log, offset=offset).write(final=True)
        if status != "SUCCEEDED":
            message = failure_message(message, logs)
            because = no_retry_reason(
                exit_code,
                read_output(logs, self.result_type).error if logs else None,
                exit_codes=self.no_retry_exit_codes,
                errors=self.no_retry_errors,
            )
            if because is not None:
                raise RayJobRefusedError(
                    submission_id,
                    status=status,
                    message=message,
                    because=because,
                    exit_code=exit_code,
                )
            raise RayJobFailedError(submission_id, status=status, message=message)
        parsed = read_output(logs, self.result_type).result if logs is not None else None
        result = parsed.model_dump(mode="json") if parsed is not None else None
        context["ti"].xcom_push(key="job_result", value=result)
        self.log.info("Ray job %s succeeded; result: %s", submission_id, result)
        return self.job_succeeded(
            context,
            {
                "submission_id": submission_id,
                "job_api_url": hook.address,
                "cluster_id": target.cluster_id,
                "status": status,
                "result": result,
                "job_seconds": job_seconds(hook, submission_id),
            },
        )
