"""An operator that deploys a registered model with Rayline's deploy job."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from rayline.clusters.errors import NotFoundError
from rayline.clusters.schemas import ServicePublic
from rayline.orchestration.operators.clusters import rendered_mapping
from rayline.orchestration.operators.ray_job import SubmitRayJobOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DeployModelOperator"]

DEPLOY_MODULE = "rayline.jobs.deploy"


class DeployModelOperator(SubmitRayJobOperator):
    """Run ``python -m rayline.jobs.deploy`` on a serving cluster and return the endpoint.

    A `SubmitRayJobOperator` whose entrypoint is built from the model, port and
    serving spec; the serving cluster's id is passed to the job when known. Once
    the job succeeded, the endpoint it registered is read back from the Cluster
    Manager's service discovery and pushed to XCom as ``endpoint_url`` (and in
    the returned value, with ``model``, ``version``, ``service_id`` and
    ``deployment_id``).

    :param model: the model to deploy: ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``. (templated)
    :param version: a version number to append to a bare ``NAME``; empty or None
        deploys what the deploy job picks (the latest). (templated)
    :param port: the port to serve on; None lets the deploy job pick a free one. (templated)
    :param serving_spec: replicas, batching and other `rayline.serving.spec.ServingSpec`
        fields, as a dict. (templated)
    :param deploy_args: more arguments for the deploy job, e.g. ``["--mode", "ray"]``. (templated)
    :param kwargs: the arguments of `SubmitRayJobOperator` (``cluster``,
        ``job_api_url``, ``deferrable`` ...), except ``entrypoint``.
    """

    template_fields: Sequence[str] = (
        *SubmitRayJobOperator.template_fields,
        "model",
        "version",
        "port",
        "serving_spec",
        "deploy_args",
    )

    def __init__(
        self,
        *,
        model: str,
        version: int | str | None = None,
        port: int | str | None = None,
        serving_spec: Mapping[str, Any] | str | None = None,
        deploy_args: Sequence[str] | str = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(entrypoint=f"python -m {DEPLOY_MODULE}", **kwargs)
        self.model = model
        self.version = version
        self.port = port
        self.serving_spec = serving_spec
        self.deploy_args = deploy_args

    def model_reference(self) -> str:
        """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` as the deploy job takes it."""
        model = str(self.model).strip()
        version = "" if self.version is None else str(self.version).strip()
        if version and version != "None" and ":" not in model and "@" not in model:
            return f"{model}:{version}"
        return model

    def build_entrypoint(self, context: Context, *, cluster_id: str | None) -> str:
        args = ["python", "-m", DEPLOY_MODULE, "--model", self.model_reference()]
        if self.port not in (None, "", "None"):
            args += ["--port", str(self.port)]
        if cluster_id is not None:
            args += ["--cluster-id", cluster_id]
        if self.serving_spec:
            args += ["--spec", json.dumps(rendered_mapping(self.serving_spec), sort_keys=True)]
        extra = self.deploy_args
        args += shlex.split(extra) if isinstance(extra, str) else [str(a) for a in extra]
        return shlex.join(args)

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
        reference = self.model_reference()
        name = reference.split("@", 1)[0].split(":", 1)[0]
        version = reference.split(":", 1)[1] if ":" in reference else None
        try:
            endpoints = self.cluster_hook.live_endpoints(name).data
        except NotFoundError as exc:
            raise AirflowException(
                f"the deploy job succeeded but no live endpoint serves {name!r}; look for the "
                f"registration in the job's log above ({exc})"
            ) from exc
        result = outcome.get("result") or {}
        if result.get("deployment_id"):
            # The job said which deployment it made: take exactly its endpoint.
            candidates = [e for e in endpoints if e.deployment_id == result["deployment_id"]]
        else:
            candidates = [
                e
                for e in endpoints
                if (version is None or str(e.model_version) == version)
                and (outcome.get("cluster_id") in (None, e.cluster_id) or e.cluster_id is None)
            ]

        if not candidates:
            found = ", ".join(f"v{e.model_version} at {e.url}" for e in endpoints)
            raise AirflowException(
                f"the deploy job succeeded but registered no endpoint of {reference} on this "
                f"cluster; live endpoints of {name!r}: {found or 'none'}"
            )
        return max(candidates, key=lambda e: e.registered_at)
