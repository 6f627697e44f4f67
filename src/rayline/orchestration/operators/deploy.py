"""An operator that deploys a registered model with Rayline's deploy job."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowException
from pydantic import BaseModel, ValidationError

from rayline.clusters.errors import NotFoundError
from rayline.clusters.schemas import ServicePublic
from rayline.jobs.requests import DeployRequest
from rayline.jobs.results import DeployResult
from rayline.orchestration.exceptions import InvalidJobRequestError
from rayline.orchestration.operators.ray_job import SubmitRayJobOperator
from rayline.orchestration.operators.rendering import rendered_mapping
from rayline.orchestration.operators.train import BAD_INPUT_EXIT_CODES, workflow_run_id_of
from rayline.serving.errors import ImageBuildError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DETERMINISTIC_DEPLOY_ERRORS", "DeployModelOperator"]

#: Deploy job errors that fail the same way on every try: a serving image that
#: cannot be built (its base image is missing, a pinned wheel does not exist).
DETERMINISTIC_DEPLOY_ERRORS = (ImageBuildError.__name__,)


class DeployModelOperator(SubmitRayJobOperator):
    """Run ``python -m rayline.jobs.deploy`` on a serving cluster and return the endpoint.

    A `SubmitRayJobOperator` whose job is a `rayline.jobs.requests.DeployRequest`
    built from the typed fields below; the serving cluster's id is passed to the
    job when known. An invalid request fails the task without retries, as do the
    job's own "bad input" exit and the errors of `DETERMINISTIC_DEPLOY_ERRORS`
    (an image build that failed fails again). Once the job succeeded, the
    endpoint of the deployment it reported is read back from the Cluster
    Manager's service discovery and pushed to XCom as ``endpoint_url`` (and in
    the returned value, with ``model``, ``version``, ``service_id`` and
    ``deployment_id``).

    :param model: the model's name. (templated)
    :param version: the version to deploy, an int (e.g. the ``version`` of the
        training job's result); None deploys the latest. (templated)
    :param port: the port to serve on; None lets the deploy job pick a free one. (templated)
    :param serving_spec: replicas, batching and other `rayline.serving.spec.ServingSpec`
        fields, as a dict. (templated)
    :param mode: ``docker`` or ``ray``; None uses the cluster's setting. (templated)
    :param labels: labels put on what the deploy makes. (templated)
    :param kwargs: the arguments of `SubmitRayJobOperator` (``cluster``,
        ``job_api_url``, ``deferrable`` ...), except ``entrypoint``.
    """

    template_fields: Sequence[str] = (
        *SubmitRayJobOperator.template_fields,
        "model",
        "version",
        "port",
        "serving_spec",
        "mode",
        "labels",
    )
    result_type: ClassVar[type[BaseModel]] = DeployResult

    def __init__(
        self,
        *,
        model: str,
        version: int | str | None = None,
        port: int | str | None = None,
        serving_spec: Mapping[str, Any] | str | None = None,
        mode: str | None = None,
        labels: Mapping[str, str] | str | None = None,
        no_retry_exit_codes: Collection[int] = BAD_INPUT_EXIT_CODES,
        no_retry_errors: Collection[str] = DETERMINISTIC_DEPLOY_ERRORS,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            entrypoint="python -m rayline.jobs.deploy",
            no_retry_exit_codes=no_retry_exit_codes,
            no_retry_errors=no_retry_errors,
            **kwargs,
        )
        self.model = model
        self.version = version
        self.port = port
        self.serving_spec = serving_spec
        self.mode = mode
        self.labels = labels

    def build_request(self, context: Context | None, *, cluster_id: str | None) -> DeployRequest:
        """The job's request from the rendered fields.

        Raises:
            InvalidJobRequestError: a field is invalid (the task is not retried).
        """
        try:
            return DeployRequest(
                model=self.model,
                version=self.version,  # type: ignore[arg-type]  # pydantic checks it
                port=self.port,  # type: ignore[arg-type]
                cluster_id=cluster_id,
                mode=self.mode or None,  # type: ignore[arg-type]
                spec=rendered_mapping(self.serving_spec) if self.serving_spec else {},  # type: ignore[arg-type]
                labels=rendered_mapping(self.labels) if self.labels else {},
                workflow_run_id=workflow_run_id_of(context) if context is not None else None,
            )
        except ValidationError as err:
            raise InvalidJobRequestError(
                f"invalid deploy request for {self.model!r}: {err}; fix the task's fields"
            ) from None

    def build_entrypoint(self, context: Context, *, cluster_id: str | None) -> str:
        return self.build_request(context, cluster_id=cluster_id).entrypoint()

    def build_job_env(self, context: Context) -> Mapping[str, str]:
        """The stores' and manager's settings (secrets: kept out of templates)."""
        from rayline.config import get_settings
        from rayline.jobs.env import job_env

        return job_env(get_settings(), "deploy", ray_address=None)

    def job_succeeded(self, context: Context, outcome: dict[str, Any]) -> dict[str, Any]:
        """Find the endpoint the deploy job registered and add it to the outcome."""
        service = self._registered_endpoint(outcome)
        self.log.info(
            "Model %s version %s is served at %s",
            service.model_name,
            service.model_version,
            service.url,
        )
        context["ti"].xcom_push(key="endpoint_url", value=service.url)
        return {
            **outcome,
            "endpoint_url": service.url,
            "model": service.model_name,
            "version": service.model_version,
            "service_id": service.id,
            "deployment_id": service.deployment_id,
        }

    def _registered_endpoint(self, outcome: dict[str, Any]) -> ServicePublic:
        if outcome.get("result") is None:
            raise AirflowException(
                f"deploy job {outcome['submission_id']} succeeded but printed no RAYLINE_RESULT "
                "line; its log is above"
            )
        deployed = DeployResult.model_validate(outcome["result"])
        try:
            endpoints = self.cluster_hook.live_endpoints(deployed.model).data
        except NotFoundError as exc:
            raise AirflowException(
                f"the deploy job succeeded but no live endpoint serves {deployed.model!r}; look "
                f"for the registration in the job's log above ({exc})"
            ) from exc
        # The job said which deployment it made: take exactly its endpoint.
        candidates = [e for e in endpoints if e.deployment_id == deployed.deployment_id]
        if not candidates:
            found = ", ".join(f"v{e.model_version} at {e.url}" for e in endpoints)
            raise AirflowException(
                f"the deploy job succeeded but registered no endpoint of deployment "
                f"{deployed.deployment_id} ({deployed.model} version {deployed.version}); live "
                f"endpoints of {deployed.model!r}: {found or 'none'}"
            )
        return max(candidates, key=lambda e: e.registered_at)
