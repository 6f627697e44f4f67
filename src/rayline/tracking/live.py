"""The MLflow alias ``live``: it names the model version Rayline serves.

The deploy job calls :func:`mark_live` once a deployment is LIVE (a rollback is a
deploy of the older version, so it moves the alias back). MLflow failing never
fails a deploy: the alias is left as it was, a warning says so, and
``rayline models sync-mlflow`` sets it again from Rayline's metadata, where the
LIVE deployment is the record of which version is served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from rayline.tracking.connect import display_uri, explain, open_client
from rayline.tracking.errors import TrackingError
from rayline.tracking.settings import TrackingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion

    from rayline.metadata import Deployment

__all__ = [
    "LIVE_ALIAS",
    "apply_live_alias",
    "find_model_version",
    "live_alias_hook",
    "live_version",
    "mark_live",
]

logger = logging.getLogger(__name__)

#: The alias of the served version in MLflow's registry.
LIVE_ALIAS = "live"


def find_model_version(client: MlflowClient, name: str, version: int) -> MlflowModelVersion | None:
    """The MLflow model version whose ``rayline.version`` tag is Rayline's ``version``."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{_quoted(name)}'", max_results=10000)
    except MlflowException as err:
        if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    matches = [mv for mv in found if mv.tags.get("rayline.version") == str(version)]
    # Two MLflow versions of one Rayline version only if a sync raced a deploy: take the first.
    return min(matches, key=lambda mv: int(mv.version)) if matches else None


def apply_live_alias(client: MlflowClient, name: str, version: int) -> bool:
    """Point ``live`` of registered model ``name`` at Rayline's ``version``.

    Returns:
        True if the alias moved, False if it already pointed there.

    Raises:
        TrackingError: MLflow has no model version of that Rayline version yet.
        MlflowException: MLflow failed.
    """
    target = find_model_version(client, name, version)
    if target is None:
        raise TrackingError(f"MLflow has no model version of {name} version {version} yet")
    current = client.get_registered_model(name).aliases.get(LIVE_ALIAS)
    if current is not None and str(current) == str(target.version):
        return False
    client.set_registered_model_alias(name, LIVE_ALIAS, target.version)
    return True


def mark_live(
    name: str,
    version: int,
    *,
    settings: TrackingSettings | None = None,
    progress: Callable[[str], None] = logger.info,
) -> str | None:
    """Set ``live`` on the MLflow version of a version just deployed; never raises.

    Returns:
        None when the alias is set (or tracking is off), else why it is not.
    """
    settings = settings or TrackingSettings()
    if not settings.enabled:
        return None
    try:
        client = open_client(settings)
        apply_live_alias(client, name, version)
    except Exception as err:  # a served model must not fail because MLflow did
        reason = err if isinstance(err, TrackingError) else explain(err, settings, "setting alias")
        failure = (
            f"MLflow alias {LIVE_ALIAS!r} not set on {name} version {version}: {reason}; "
            f"the deployment is live; `rayline models sync-mlflow {name}` sets it later"
        )
        logger.warning("%s", failure)
        progress(failure)
        return failure
    progress(
        f"MLflow alias {LIVE_ALIAS!r} of {name} -> version {version} "
        f"({display_uri(settings.tracking_uri)})"
    )
    return None


def live_alias_hook(
    progress: Callable[[str], None] = logger.info,
) -> Callable[[Deployment], str | None]:
    """The Deployer's ``on_live``: :func:`mark_live` for each deployment that went live."""

    def on_live(row: Deployment) -> str | None:
        return mark_live(row.model_name, row.model_version, progress=progress)

    return on_live


def live_version(engine: Engine, name: str) -> int | None:
    """The version of ``name`` Rayline serves now (its newest LIVE deployment), if any."""
    from rayline.metadata import Deployment, DeploymentStatus, session_scope

    query = (
        select(Deployment.model_version)
        .where(Deployment.model_name == name, Deployment.status == DeploymentStatus.LIVE)
        .order_by(Deployment.updated_at.desc())
        .limit(1)
    )
    with session_scope(engine) as session:
        return session.scalars(query).first()


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
