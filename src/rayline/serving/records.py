"""Deployment rows in the metadata store: create, move, find.

Rows are never deleted: a stopped or failed deployment stays as the audit
trail of what was served, where, and why it ended.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from rayline.metadata import Deployment, DeploymentMode, DeploymentStatus, session_scope
from rayline.serving.errors import DeploymentNotFoundError

__all__ = [
    "ACTIVE",
    "create_deployment",
    "find_deployments",
    "get_deployment",
    "list_deployments",
    "previous_version",
    "update_deployment",
]

#: Deployments that hold (or are about to hold) a container or Serve app.
ACTIVE = (
    DeploymentStatus.PENDING,
    DeploymentStatus.STARTING,
    DeploymentStatus.LIVE,
    DeploymentStatus.DRAINING,
)


def create_deployment(
    engine: Engine,
    *,
    model_name: str,
    model_version: int,
    mode: DeploymentMode,
    cluster_id: str | None = None,
    workflow_run_id: int | None = None,
) -> Deployment:
    """Insert a PENDING deployment and return it (detached, readable)."""
    with session_scope(engine) as session:
        row = Deployment(
            model_name=model_name,
            model_version=model_version,
            mode=mode,
            status=DeploymentStatus.PENDING,
            cluster_id=cluster_id,
            workflow_run_id=workflow_run_id,
        )
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def update_deployment(engine: Engine, deployment_id: str, **fields: Any) -> Deployment:
    """Set ``fields`` on one deployment and return its new state.

    Raises:
        DeploymentNotFoundError: No deployment has this id.
    """
    with session_scope(engine) as session:
        row = session.get(Deployment, deployment_id, with_for_update=True)
        if row is None:
            raise DeploymentNotFoundError(repr(deployment_id))
        for key, value in fields.items():
            setattr(row, key, value)
        session.flush()
        session.expunge(row)
        return row


def get_deployment(engine: Engine, deployment_id: str) -> Deployment:
    """Return one deployment.

    Raises:
        DeploymentNotFoundError: No deployment has this id.
    """
    with session_scope(engine) as session:
        row = session.get(Deployment, deployment_id)
        if row is None:
            raise DeploymentNotFoundError(repr(deployment_id))
        session.expunge(row)
        return row


def list_deployments(
    engine: Engine,
    *,
    model: str | None = None,
    statuses: tuple[DeploymentStatus, ...] | None = None,
    limit: int | None = None,
) -> list[Deployment]:
    """Deployments, newest first, optionally of one model and in some statuses."""
    query = select(Deployment).order_by(Deployment.created_at.desc(), Deployment.id)
    if model is not None:
        query = query.where(Deployment.model_name == model)
    if statuses is not None:
        query = query.where(Deployment.status.in_(statuses))
    if limit is not None:
        query = query.limit(limit)
    with session_scope(engine) as session:
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def find_deployments(engine: Engine, target: str) -> list[Deployment]:
    """The deployment with id ``target``, else the active ones of model ``target``.

    Raises:
        DeploymentNotFoundError: Neither matches.
    """
    with session_scope(engine) as session:
        row = session.get(Deployment, target)
        if row is not None:
            session.expunge(row)
            return [row]
    rows = list_deployments(engine, model=target, statuses=ACTIVE)
    if not rows:
        raise DeploymentNotFoundError(
            f"with id {target!r} and no active deployment of model {target!r}"
        )
    return rows


def previous_version(engine: Engine, model: str, current: int) -> int | None:
    """The version served before ``current``: the newest stopped deployment of another one."""
    for row in list_deployments(engine, model=model, statuses=(DeploymentStatus.STOPPED,)):
        if row.model_version != current:
            return row.model_version
    return None
