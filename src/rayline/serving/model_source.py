"""Where a deployment's model comes from: the registered version, its files here.

A reference (``NAME``, ``NAME:VERSION``, ``NAME@ALIAS``) names a version in the
model registry; the registry's artifact URI says which store holds its files,
which are fetched, checked against the registered manifest and loaded once
before anything is started.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from rayline.metadata import ModelRegistry, ModelVersion
from rayline.serving.errors import DeploymentFailedError, ServingError
from rayline.serving.model import ServedModel, load_predictor
from rayline.serving.spec import ModelRef
from rayline.storage import StorageError, fetch_version, open_store

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["fetch_model", "resolve_version", "served_model", "split_artifact_uri"]


def resolve_version(engine: Engine, ref: ModelRef) -> ModelVersion:
    """The registered version a reference names (latest READY one for a bare name).

    Raises:
        ModelNotFoundError, ModelVersionNotFoundError, AliasNotFoundError: Not registered.
    """
    registry = ModelRegistry()
    if ref.alias is not None:
        return registry.resolve_alias(engine, name=ref.name, alias=ref.alias)
    return registry.get_version(engine, name=ref.name, version=ref.version)


def split_artifact_uri(uri: str, name: str) -> tuple[str, str]:
    """``<store root>/<name>/<version id>`` -> (store root, version id).

    Raises:
        ServingError: The URI is not a published version of ``name``.
    """
    root, _, version_id = uri.rstrip("/").rpartition("/")
    if not root.endswith(f"/{name}") or not version_id:
        raise ServingError(
            f"registered artifact URI {uri!r} is not <store>/{name}/<version id>; register "
            "the version with the URI rayline.storage returned when publishing it"
        )
    return root.removesuffix(f"/{name}"), version_id


def served_model(version: ModelVersion) -> tuple[ServedModel, str]:
    """What a deployment of ``version`` serves, and the root URI of the store holding it.

    Raises:
        ServingError: The registered artifact URI is not a published version.
    """
    store_uri, version_id = split_artifact_uri(version.artifact_uri, version.model_name)
    served = ServedModel(
        name=version.model_name,
        version=version.version,
        version_id=version_id,
        sha256=version.sha256,
        framework=version.framework,
    )
    return served, store_uri


def fetch_model(
    served: ServedModel,
    store_uri: str,
    target: Path,
    *,
    settings: Settings,
    progress: Callable[[str], None],
) -> Path:
    """Download the version into ``target``, check every file and load the model once.

    Loading here makes a broken version fail before anything starts; otherwise
    the server would start and Serve would retry the replica for a minute
    before giving up, while the old version serves on regardless.

    Raises:
        DeploymentFailedError: The files are missing, differ from the registered
            manifest, or cannot be loaded.
    """
    progress(f"fetching {store_uri}/{served.name}/{served.version_id} and verifying sha256")
    try:
        fetch_version(
            open_store(store_uri, settings),
            served.name,
            served.version_id,
            target,
            expected_manifest_sha256=served.sha256,
        )
    except StorageError as err:
        raise DeploymentFailedError(
            f"refusing to deploy {served.name} version {served.version}: {err}"
        ) from err
    progress("loading the model once to check it")
    try:
        load_predictor(target)
    except Exception as err:  # any library's error: the files cannot be served
        raise DeploymentFailedError(
            f"refusing to deploy {served.name} version {served.version}: its model files "
            f"pass their checksums but cannot be loaded ({type(err).__name__}: {err}); "
            "publish a version written by rayline.training"
        ) from err
    return target
