"""An operator that submits a Ray job, follows it to the end and shows its logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, XComArg
from airflow.sdk.exceptions import AirflowException
from pydantic import BaseModel

from rayline.clusters.errors import ClusterFailedError, WaitTimeoutError
from rayline.clusters.schemas import ClusterState
from rayline.jobs.output import AnyResult, failure_message, read_output
from rayline.orchestration import ids
from rayline.orchestration.exceptions import (
    RayJobApiError,
    RayJobFailedError,
    RayJobNotFoundError,
    RayJobRefusedError,
)
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.hooks.ray_jobs import RayJobHook, RayJobState
from rayline.orchestration.operators.clusters import build_cluster_spec, rendered_mapping
from rayline.orchestration.triggers.ray_job import RayJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SubmitRayJobOperator"]

_ACTIVE = frozenset({"PENDING", "RUNNING"})


@dataclass(frozen=True)
class _Target:
    """Where the job runs: the job API, and the Rayline cluster behind it if known."""

    job_api_url: str | None
    cluster_id: str | None
    ray_address: str | None = None


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
    """

    template_fields: Sequence[str] = (
        "entrypoint",
        "job_api_url",
        "cluster",
        "runtime_env",
        "metadata",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "runtime_env": "json",
        "cluster": "json",
        "metadata": "json",
    }
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
        poll_interval: float = 5.0,
        stream_logs: bool = True,
        unreachable_timeout: float = 60.0,
        job_timeout: float | None = None,
        job_env: Callable[[], Mapping[str, str]] | None = None,
        no_retry_exit_codes: Collection[int] = (),
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
        self.poll_interval = poll_interval
        self.stream_logs = stream_logs
        self.unreachable_timeout = unreachable_timeout
        self.job_timeout = job_timeout
        self.job_env = job_env
        self.no_retry_exit_codes = frozenset(no_retry_exit_codes)
        self._followed: tuple[RayJobHook, str] | None = None

    @cached_property
    def cluster_hook(self) -> ClusterManagerHook:
        """The Cluster Manager hook of ``rayline_conn_id``."""
        return ClusterManagerHook(self.rayline_conn_id)

    def get_hook(self, job_api_url: str | None) -> RayJobHook:
        """The Ray job hook of one cluster (``ray_conn_id`` when the URL is None)."""
        return RayJobHook(job_api_url, ray_conn_id=self.ray_conn_id)

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
        hook = self.get_hook(target.job_api_url)
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
        if self.deferrable:
            # execute_complete reads the cluster back from XCom: defer kwargs are not
            # passed on by every runner (dag.test() in Airflow 3.3 drops them).
            context["ti"].xcom_push(key="cluster_id", value=target.cluster_id)
            self.defer(
                trigger=RayJobTrigger(
                    job_api_url=hook.address,
                    submission_id=submission_id,
                    poll_interval=self.poll_interval,
                    stream_logs=self.stream_logs,
                    unreachable_timeout=self.unreachable_timeout,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.job_timeout) if self.job_timeout else None,
            )
        return self._follow(context, hook, submission_id, target)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: write the rest of the log, then succeed or raise."""
        ti = context["ti"]
        cluster_id = ti.xcom_pull(task_ids=ti.task_id, key="cluster_id")
        hook = self.get_hook(event["job_api_url"])
        target = _Target(event["job_api_url"], cluster_id)
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
    def _resolve_target(self, context: Context, key: ids.TaskKey) -> _Target:
        """Find the job API to submit to; replace a dead cluster when allowed."""
        if self.cluster is None:
            return _Target(self.job_api_url or None, None)
        given = rendered_mapping(self.cluster)
        cluster_id = str(given["cluster_id"])
        cluster = self.cluster_hook.get_cluster(cluster_id)
        if cluster.state == ClusterState.READY:
            return _Target(cluster.job_api_url, cluster.id, cluster.head_address)
        problem = f"cluster {cluster_id} is {cluster.state.value}: {cluster.reason or 'no reason'}"
        if not cluster.state.is_terminal() and cluster.state != ClusterState.TERMINATING:
            self.log.info("Cluster %s is %s; waiting for READY", cluster_id, cluster.state.value)
            try:
                cluster = self.cluster_hook.wait_until_ready(
                    cluster_id, timeout=self.cluster_ready_timeout
                )
                return _Target(cluster.job_api_url, cluster.id, cluster.head_address)
            except (ClusterFailedError, WaitTimeoutError) as exc:
                problem = str(exc)
        if not self.replace_dead_cluster or not given.get("spec"):
            raise AirflowException(
                f"cannot run the job: {problem}; recreate the cluster (clear its setup task) "
                "or pass a cluster XCom with a spec and replace_dead_cluster=True"
            )
        return self._replace_cluster(context, key, given, problem)

    def _replace_cluster(
        self, context: Context, key: ids.TaskKey, dead: Mapping[str, Any], problem: str
    ) -> _Target:
        self.log.warning("%s; requesting a replacement cluster", problem)
        self.cluster_hook.delete_cluster(str(dead["cluster_id"]))
        labels = {**dict(dead.get("labels") or {}), "rayline-replaces": str(dead["cluster_id"])}
        spec = build_cluster_spec(dead["spec"], key=key, labels=labels)
        cluster = self.cluster_hook.create_cluster(spec)
        self.log.info(
            "Replacement cluster %s requested (request id %s)", cluster.id, spec.request_id
        )
        context["ti"].xcom_push(key="cluster_id", value=cluster.id)
        try:
            cluster = self.cluster_hook.wait_until_ready(
                cluster.id, timeout=self.cluster_ready_timeout
            )
        except (ClusterFailedError, WaitTimeoutError) as exc:
            # Labelled like the original, so the teardown deletes it; say so.
            raise AirflowException(
                f"replacement cluster {cluster.id} did not become READY: {exc}"
            ) from exc
        self.log.info(
            "Replacement cluster %s is READY; job API at %s", cluster.id, cluster.job_api_url
        )
        return _Target(cluster.job_api_url, cluster.id, cluster.head_address)

    # ------------------------------------------------------------ job
    def _find_or_submit(
        self, context: Context, hook: RayJobHook, key: ids.TaskKey, target: _Target
    ) -> tuple[str, RayJobState | None]:
        """Return this try's job, an earlier try's job worth following, or a new job."""
        submission_id = ids.submission_id(key)
        state = hook.get_job_state(submission_id)
        if state is not None:
            self.log.info(
                "Ray job %s exists already (%s); following it", submission_id, state.status
            )
            return submission_id, state
        for try_number in range(key.try_number - 1, 0, -1):
            earlier = ids.submission_id(key.with_try(try_number))
            state = hook.get_job_state(earlier)
            if state is None:
                continue
            if state.status in _ACTIVE or state.succeeded:
                self.log.info(
                    "Ray job %s of try %d is %s; following it instead of submitting again",
                    earlier,
                    try_number,
                    state.status,
                )
                return earlier, state
            self.log.info("Ray job %s of try %d ended %s", earlier, try_number, state.status)
            break
        self._submit(context, hook, key, submission_id, target)
        return submission_id, None

    def _submit(
        self,
        context: Context,
        hook: RayJobHook,
        key: ids.TaskKey,
        submission_id: str,
        target: _Target,
    ) -> None:
        entrypoint = self.build_entrypoint(context, cluster_id=target.cluster_id)
        self.log.info("Submitting Ray job %s to %s: %s", submission_id, hook.address, entrypoint)
        try:
            hook.submit_job(
                submission_id=submission_id,
                entrypoint=entrypoint,
                runtime_env=self._runtime_env(context, key, target, hook.address),
                metadata=self._metadata(key),
                entrypoint_num_cpus=self.entrypoint_num_cpus,
                entrypoint_resources=dict(self.entrypoint_resources or {}) or None,
            )
        except RayJobApiError:
            # The submit may have reached Ray with its answer lost: then the job exists.
            if hook.get_job_state(submission_id) is None:
                raise
            self.log.info("Ray job %s was submitted after all", submission_id)

    def _runtime_env(
        self, context: Context, key: ids.TaskKey, target: _Target, job_api_url: str
    ) -> dict[str, Any]:
        """The runtime env: Airflow's context variables so the job knows its run, and
        ``RAY_ADDRESS`` so the job's actors find their own cluster (see `rayline.jobs.env`).
        """
        env = dict(rendered_mapping(self.runtime_env) if self.runtime_env else {})
        env["env_vars"] = {
            "AIRFLOW_CTX_DAG_ID": key.dag_id,
            "AIRFLOW_CTX_DAG_RUN_ID": key.run_id,
            "AIRFLOW_CTX_TASK_ID": key.task_id,
            "AIRFLOW_CTX_TRY_NUMBER": str(key.try_number),
            "RAY_ADDRESS": target.ray_address or job_api_url,
            **dict(self.build_job_env(context)),
            **dict(env.get("env_vars") or {}),
        }
        return env

    def _metadata(self, key: ids.TaskKey) -> dict[str, str]:
        given = {
            str(k): str(v)
            for k, v in (rendered_mapping(self.metadata) if self.metadata else {}).items()
        }
        return {
            "airflow_dag_id": key.dag_id,
            "airflow_run_id": key.run_id,
            "airflow_task_id": key.task_id,
            "airflow_try_number": str(key.try_number),
            **given,
        }

    def _follow(
        self, context: Context, hook: RayJobHook, submission_id: str, target: _Target
    ) -> dict[str, Any]:
        """Poll on the worker until the job ends, writing its log as it comes."""
        self._followed = (hook, submission_id)
        deadline = time.monotonic() + self.job_timeout if self.job_timeout else None
        offset = 0
        unreachable_since: float | None = None
        while True:
            try:
                state = hook.get_job_state(submission_id)
            except RayJobApiError as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since >= self.unreachable_timeout:
                    raise
                self.log.warning("Ray job %s: %s; retrying", submission_id, exc)
                time.sleep(self.poll_interval)
                continue
            unreachable_since = None
            if state is None:
                raise RayJobNotFoundError(submission_id, hook.address)
            if state.is_terminal:
                break
            if self.stream_logs:
                offset, _ = self._write_logs(hook, submission_id, offset, final=False)
            if deadline is not None and time.monotonic() >= deadline:
                hook.stop_job(submission_id)
                raise AirflowException(
                    f"Ray job {submission_id} ran longer than {self.job_timeout:g} s and was "
                    "stopped; raise job_timeout if it needs longer"
                )
            time.sleep(self.poll_interval)
        self._followed = None
        message = state.message
        if state.driver_exit_code is not None and not state.succeeded:
            message += f" (exit code {state.driver_exit_code})"
        return self._finish(
            context,
            hook,
            submission_id,
            target,
            state.status,
            message,
            offset,
            exit_code=state.driver_exit_code,
        )

    def _finish(
        self,
        context: Context,
        hook: RayJobHook,
        submission_id: str,
        target: _Target,
        status: str,
        message: str,
        offset: int,
        *,
        exit_code: int | None = None,
    ) -> dict[str, Any]:
        """Write what is left of the log, check the status, build the XCom value."""
        _, logs = self._write_logs(hook, submission_id, offset, final=True)
        if status != "SUCCEEDED":
            message = failure_message(message, logs)
            if exit_code is not None and exit_code in self.no_retry_exit_codes:
                raise RayJobRefusedError(
                    submission_id, status=status, message=message, exit_code=exit_code
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
                "job_seconds": self._job_seconds(hook, submission_id),
            },
        )

    def _job_seconds(self, hook: RayJobHook, submission_id: str) -> float | None:
        """The job's run time as Ray measured it (for the platform-overhead figures)."""
        try:
            state = hook.get_job_state(submission_id)
        except RayJobApiError:
            return None
        return state.seconds if state is not None else None

    def _write_logs(
        self, hook: RayJobHook, submission_id: str, offset: int, *, final: bool
    ) -> tuple[int, str | None]:
        """Write the job's log lines from ``offset`` to the task log.

        Returns:
            The new offset, and the whole log (None when it could not be read).
        """
        try:
            logs = hook.get_job_logs(submission_id)
        except RayJobApiError as exc:
            # Logs are a courtesy here; the job's status decides the task's fate.
            self.log.warning("Cannot read the log of Ray job %s: %s", submission_id, exc)
            return offset, None
        end = len(logs) if final else logs.rfind("\n", offset) + 1
        for line in logs[offset:end].splitlines():
            self.log.info("[ray job] %s", line)
        return max(offset, end), logs
