"""An operator that trains a model with Rayline's training job and returns its version."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowException
from pydantic import BaseModel

from rayline.jobs.requests import TrainRequest
from rayline.jobs.results import TrainResult
from rayline.orchestration.exceptions import InvalidJobRequestError
from rayline.orchestration.operators.ray_job import SubmitRayJobOperator
from rayline.orchestration.operators.rendering import rendered_mapping

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BAD_INPUT_EXIT_CODES", "TrainModelOperator", "workflow_run_id_of"]

#: Rayline's jobs exit 2 on bad input (nothing was trained or started): no retry helps.
BAD_INPUT_EXIT_CODES = (2,)


def workflow_run_id_of(context: Context) -> int | None:
    """The metadata store's id of this DAG run, recorded as the lineage of what jobs make."""
    from rayline.orchestration import recording

    ti = context["ti"]
    return recording.workflow_run_id(ti.dag_id, ti.run_id)


class TrainModelOperator(SubmitRayJobOperator):
    """Run ``python -m rayline.jobs.train`` on a training cluster; return the new version.

    A `SubmitRayJobOperator` whose job is a `rayline.jobs.requests.TrainRequest`.
    The spec is checked before anything is submitted: an invalid one fails the
    task without retries, as does the job's own "bad input" exit. Once the job
    succeeded its `rayline.jobs.results.TrainResult` is pushed to XCom as
    ``job_result`` (``version`` an int) and returned under ``result``.

    :param spec: the training spec, as a dict (`rayline.training.spec.TrainingSpec`). (templated)
    :param run_name: the Ray Train run name; the same name resumes that run. (templated)
    :param kwargs: the arguments of `SubmitRayJobOperator` (``cluster``,
        ``job_api_url``, ``deferrable`` ...), except ``entrypoint``.
    """

    template_fields: Sequence[str] = (*SubmitRayJobOperator.template_fields, "spec", "run_name")
    result_type: ClassVar[type[BaseModel]] = TrainResult

    def __init__(
        self,
        *,
        spec: Mapping[str, Any] | str,
        run_name: str | None = None,
        no_retry_exit_codes: Collection[int] = BAD_INPUT_EXIT_CODES,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            entrypoint="python -m rayline.jobs.train",
            no_retry_exit_codes=no_retry_exit_codes,
            **kwargs,
        )
        self.spec = spec
        self.run_name = run_name

    def build_request(self, context: Context) -> TrainRequest:
        """The job's request from the rendered fields.

        Raises:
            InvalidJobRequestError: the spec is invalid (the task is not retried).
        """
        from rayline.training.errors import InvalidSpecError
        from rayline.training.spec import load_spec

        try:
            spec = load_spec(rendered_mapping(self.spec))
        except InvalidSpecError as err:
            raise InvalidJobRequestError(f"{err}; fix the run's training param") from None
        return TrainRequest(
            spec=spec, run_name=self.run_name or None, workflow_run_id=workflow_run_id_of(context)
        )

    def build_entrypoint(self, context: Context, *, cluster_id: str | None) -> str:
        return self.build_request(context).entrypoint()

    def build_job_env(self, context: Context) -> Mapping[str, str]:
        """The stores' settings (secrets: kept out of templates); the base adds RAY_ADDRESS."""
        from rayline.config import get_settings
        from rayline.jobs.env import job_env

        return job_env(get_settings(), "train", ray_address=None)

    def job_succeeded(self, context: Context, outcome: dict[str, Any]) -> dict[str, Any]:
        """Fail unless the job reported the version it registered."""
        if outcome.get("result") is None:
            raise AirflowException(
                f"training job {outcome['submission_id']} succeeded but printed no "
                "RAYLINE_RESULT line; its log is above"
            )
        result = TrainResult.model_validate(outcome["result"])
        self.log.info("Registered %s version %d", result.name, result.version)
        return outcome
