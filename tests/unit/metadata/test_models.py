"""Table-level rules that the ORM helpers rely on: defaults, ids, foreign keys."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from rayline.metadata.db import session_scope
from rayline.metadata.enums import DeploymentMode, DeploymentStatus, EndpointHealth
from rayline.metadata.models import Deployment, ServiceEndpoint
from rayline.metadata.registry import ModelRegistry


def test_deployment_and_endpoint_defaults(engine: Engine) -> None:
    ModelRegistry().register_version(engine, name="iris", artifact_uri="file:///m", sha256="0")
    with session_scope(engine) as session:
        deployment = Deployment(model_name="iris", model_version=1, mode=DeploymentMode.DOCKER)
        session.add(deployment)
        session.flush()
        endpoint = ServiceEndpoint(
            model_name="iris",
            model_version=1,
            url="http://127.0.0.1:8000/iris",
            deployment_id=deployment.id,
        )
        session.add(endpoint)

    assert re.fullmatch(r"dp-[0-9a-f]{12}", deployment.id)
    assert deployment.status is DeploymentStatus.PENDING
    assert deployment.created_at.tzinfo is not None
    assert endpoint.health is EndpointHealth.UNKNOWN


def test_deployment_of_an_unregistered_version_is_refused(engine: Engine) -> None:
    # Foreign keys are enforced on SQLite too (PRAGMA foreign_keys=ON).
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(Deployment(model_name="ghost", model_version=1, mode=DeploymentMode.RAY))
