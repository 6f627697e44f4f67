"""Serving: a model version as a Docker image running Ray Serve, or a Serve app on Ray.

The pieces, each in its own module:

- :mod:`~rayline.serving.app`: the Ray Serve application (HTTP API, validation,
  dynamic batching, Prometheus metrics);
- :mod:`~rayline.serving.base_image`, :mod:`~rayline.serving.model_image`: the base
  image and one image per model version, built offline (wheels from
  :mod:`~rayline.serving.wheelhouse`, Docker calls in :mod:`~rayline.serving.image_build`);
- :mod:`~rayline.serving.container`: what runs inside a model container;
- :mod:`~rayline.serving.runtimes`: Docker and Ray Serve, behind one interface;
- :mod:`~rayline.serving.deployer`: deploy, update without downtime, roll back, delete,
  with :mod:`~rayline.serving.model_source` (the version and its verified files) and
  :mod:`~rayline.serving.deploy_lock` (one deploy of a model at a time);
- :mod:`~rayline.serving.health`: wait for a new server to answer, mark deployments
  whose server died FAILED;
- :mod:`~rayline.serving.metrics_dirs`: the replicas' metrics directory of a deployment;
- :mod:`~rayline.serving.client`: predictions through service discovery.

This package module imports nothing heavy: model containers import parts of
it without the metadata store's dependencies (SQLAlchemy is not in the image).

The deploy job runs on a serving cluster through `rayline.jobs.serving.run_deploy`.

Example:
    >>> from rayline.jobs.requests import DeployRequest
    >>> from rayline.jobs.serving import run_deploy  # doctest: +SKIP
    >>> request = DeployRequest(model="iris", alias="champion")
    >>> outcome = run_deploy(manager, request)  # doctest: +SKIP
    >>> outcome.result.url  # doctest: +SKIP
    'http://127.0.0.1:24318'
"""

from __future__ import annotations

from rayline.serving.errors import (
    DeploymentFailedError,
    DeploymentNotFoundError,
    DockerUnavailableError,
    ImageBuildError,
    InvalidModelRefError,
    InvalidRequestError,
    NoEndpointError,
    PortInUseError,
    PredictionRejectedError,
    ServingError,
)
from rayline.serving.spec import ModelRef, ServingSpec, parse_model_ref

__all__ = [
    "DeploymentFailedError",
    "DeploymentNotFoundError",
    "DockerUnavailableError",
    "ImageBuildError",
    "InvalidModelRefError",
    "InvalidRequestError",
    "ModelRef",
    "NoEndpointError",
    "PortInUseError",
    "PredictionRejectedError",
    "ServingError",
    "ServingSpec",
    "parse_model_ref",
]
