"""The start-up check: can this run use MLflow? Each refusal explained.

Runs before training, so an unreachable server, refused credentials or a name
MLflow refuses stop the run (or turn tracking off) before any work is done.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlparse, urlunparse

from rayline.tracking.errors import TrackingUnavailableError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from rayline.tracking.settings import TrackingSettings

__all__ = [
    "display_uri",
    "ensure_experiment",
    "ensure_registered_model",
    "explain",
    "open_client",
    "probe",
]

_HTTP_STATUS = re.compile(r"error code (\d{3})|HTTP (\d{3})|status code (\d{3})")
_UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
)
_CREDENTIALS_HINT = (
    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
    "to an account of that server"
)


def display_uri(uri: str) -> str:
    """``uri`` without any user or password in it, for messages."""
    parsed = urlparse(uri)
    if not parsed.netloc or "@" not in parsed.netloc:
        return uri
    return urlunparse(parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]))


def probe(settings: TrackingSettings) -> None:
    """For a tracking server, check that it answers ``/health`` within the probe timeout.

    MLflow's client retries a dead server for minutes; this says at once.

    Raises:
        TrackingUnavailableError: The server does not answer.
    """
    uri = settings.tracking_uri.strip()
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    health = urlunparse(parsed._replace(path=parsed.path.rstrip("/") + "/health", query=""))
    where = display_uri(uri)
    try:
        with urllib.request.urlopen(health, timeout=settings.probe_timeout_seconds) as answer:
            answer.read(64)
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise TrackingUnavailableError(
                f"MLflow at {where} refused the credentials (HTTP {err.code}): {_CREDENTIALS_HINT}"
            ) from None
        raise TrackingUnavailableError(
            f"MLflow at {where} answered /health with HTTP {err.code}: is it an MLflow "
            "tracking server? Check RAYLINE_MLFLOW_TRACKING_URI"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingUnavailableError(
            f"MLflow tracking server {where} is unreachable ({reason}): start it "
            "(deploy/mlflow.sh up) or fix RAYLINE_MLFLOW_TRACKING_URI"
        ) from None


def open_client(settings: TrackingSettings) -> MlflowClient:
    """A client of the tracking server, checked with :func:`probe` first.

    MLflow's client retries a failed request 7 times with a backoff of minutes in
    all; a server that dies mid-run would stall training (or a deploy) that long.
    Unless the user set them, two retries and a 30 s timeout are used instead.

    Raises:
        TrackingUnavailableError: The server does not answer.
    """
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    probe(settings)
    uri = settings.tracking_uri.strip()
    # The flavors' log_model calls read the process-wide URI.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def explain(err: Exception, settings: TrackingSettings, doing: str) -> TrackingUnavailableError:
    """A :class:`TrackingUnavailableError` saying what MLflow refused while ``doing``."""
    where = display_uri(settings.tracking_uri)
    text = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
    code = str(getattr(err, "error_code", ""))
    match = _HTTP_STATUS.search(str(err))
    status = next((int(group) for group in match.groups() if group), 0) if match else 0
    if status in (401, 403) or code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return TrackingUnavailableError(
            f"MLflow at {where} refused the credentials while {doing}: {_CREDENTIALS_HINT}"
        )
    if any(sign in str(err) for sign in _UNREACHABLE):
        return TrackingUnavailableError(
            f"MLflow at {where} became unreachable while {doing}: start it again "
            "(deploy/mlflow.sh up) or fix RAYLINE_MLFLOW_TRACKING_URI"
        )
    return TrackingUnavailableError(f"MLflow at {where} failed while {doing}: {text}")


def ensure_experiment(client: MlflowClient, settings: TrackingSettings) -> str:
    """The id of the experiment ``settings.experiment``, created when missing.

    Raises:
        TrackingUnavailableError: MLflow refused the name (or the server failed).
    """
    from mlflow.exceptions import MlflowException

    name = settings.experiment
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return client.create_experiment(
                name, artifact_location=settings.resolved_artifact_location()
            )
    except MlflowException as err:
        if getattr(err, "error_code", "") in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"):
            raise TrackingUnavailableError(
                f"MLflow refused the experiment name {name!r}: {str(err).splitlines()[0][:300]}; "
                "set RAYLINE_MLFLOW_EXPERIMENT to another name"
            ) from None
        raise explain(err, settings, f"opening experiment {name!r}") from None
    if experiment.lifecycle_stage == "deleted":
        raise TrackingUnavailableError(
            f"MLflow experiment {name!r} is deleted: restore it in MLflow "
            "(`mlflow experiments restore`) or set RAYLINE_MLFLOW_EXPERIMENT to another name"
        )
    return str(experiment.experiment_id)


def ensure_registered_model(client: MlflowClient, settings: TrackingSettings, name: str) -> None:
    """Create the registered model ``name`` when missing, so a refused name fails early.

    Raises:
        TrackingUnavailableError: MLflow refused the name (or the server failed).
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise _refused_model(err, settings, name) from None
    try:
        client.create_registered_model(name, tags={"rayline.model": name})
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_ALREADY_EXISTS":  # a concurrent run
            raise _refused_model(err, settings, name) from None


def _refused_model(err: Exception, settings: TrackingSettings, name: str) -> Exception:
    if getattr(err, "error_code", "") == "INVALID_PARAMETER_VALUE":
        return TrackingUnavailableError(
            f"MLflow refused the registered model name {name!r}: "
            f"{str(err).splitlines()[0][:300]}; rename the model in the spec"
        )
    return explain(err, settings, f"opening registered model {name!r}")
