"""The typed results Rayline's jobs print (``RAYLINE_RESULT``) and their callers read.

Each job emits its result with :func:`rayline.jobs.output.result_line` and each
caller reads it with :func:`rayline.jobs.output.read_output` into the same
model, so a version stays an ``int`` and a port an ``int`` from the job to the
CLI, XCom and the next job.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["DeleteResult", "DeployResult", "TrainResult"]


class TrainResult(BaseModel):
    """What a successful training job registered.

    Attributes:
        name: The model's name.
        version: The registered version number.
        version_id: The version's id in the metadata store.
        artifact_uri: Where the version's artifacts are.
        manifest_sha256: Checksum of the artifacts' manifest.
        framework: The framework that trained it.
        metrics: Evaluation metrics on the validation split.
        params: The hyperparameters used.
        dataset_uri: The dataset it trained on.
        dataset_sha256: Checksum of that dataset.
        code_version: Rayline's code version that trained it.
        workflow_run_id: The workflow run recorded as its lineage, if any.
        run_name: The training run's name (re-used to resume it).
        resumed_from: The checkpoint epoch it resumed from (0: a fresh run).
        mlflow_run_id: The MLflow run that tracked it, when tracking was on.
        tracking_error: Why MLflow has no (or an incomplete) record of it, when
            tracking failed; ``rayline models sync-mlflow`` catches MLflow up.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    version: int
    version_id: str
    artifact_uri: str
    manifest_sha256: str
    framework: str
    metrics: dict[str, float]
    params: dict[str, Any]
    dataset_uri: str
    dataset_sha256: str
    code_version: str
    workflow_run_id: int | None = None
    run_name: str
    resumed_from: int = 0
    mlflow_run_id: str | None = None
    tracking_error: str | None = None


class DeployResult(BaseModel):
    """One deployment, as the deploy job made, rolled back or stopped it.

    Attributes:
        deployment_id: The deployment's id.
        model: The model's name.
        version: The version served.
        status: The deployment's status (``live``, ``stopped`` ...).
        mode: ``docker`` or ``ray``.
        url: Where the model answers, once live.
        port: The port it serves on.
        image: The model image, in Docker mode.
        cluster_id: The serving cluster it belongs to.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    deployment_id: str
    model: str
    version: int
    status: str
    mode: str
    url: str | None = None
    port: int | None = None
    image: str | None = None
    cluster_id: str | None = None


class DeleteResult(BaseModel):
    """The deployments a delete stopped."""

    model_config = ConfigDict(frozen=True)

    deleted: list[DeployResult]
