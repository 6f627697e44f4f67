"""Load a published model version, from the store or from a local directory.

Each framework reads its own model file: the loader is found by name in the
framework registry (:mod:`rayline.training.frameworks`), the one place that
lists the frameworks.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.models.predictor import Predictor
from rayline.training.errors import ModelLoadError
from rayline.training.frameworks import LoopConfig, get_framework
from rayline.training.model_files import checked_model_path
from rayline.training.signature import Signature

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from rayline.storage import ArtifactStore

__all__ = [
    "ARTIFACT_FORMAT",
    "VERSION_FILES",
    "load_model",
    "load_model_dir",
    "load_registered_model",
]

ARTIFACT_FORMAT = 1
#: Every file of a published version but the model file itself (see rayline.models).
VERSION_FILES = frozenset(
    {
        "model.json",
        "signature.json",
        "preprocessing.json",
        "metrics.json",
        "params.json",
        "spec.json",
        "lineage.json",
        "input_example.json",
        "manifest.json",
    }
)


def _read_json(directory: Path, name: str) -> Any:
    try:
        return json.loads((directory / name).read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{directory / name} is missing or unreadable ({err})") from None


def load_model_dir(
    directory: Path,
    *,
    version_id: str | None = None,
    model_sha256: str | None = None,
    require_manifest: bool = False,
) -> Predictor:
    """Load a model version from a local directory laid out as :mod:`rayline.models` describes.

    ``model_file`` in ``model.json`` must be a plain file name; when the directory
    holds a ``manifest.json`` (every fetched version does), the model file must be
    listed there and match its sha256. Both are checked before the model is
    loaded: a pickled model runs code when it is loaded.

    Args:
        directory: The version's files.
        version_id: The store's version id, if it came from a store.
        model_sha256: The model file's sha256 as its writer recorded it (a
            directory not published yet has no manifest); checked when given.
        require_manifest: Refuse a directory without ``manifest.json``.

    Raises:
        ModelLoadError: A file is missing, the format is unknown, the model file
            is not a plain listed name or fails its sha256, or the framework
            cannot load its model.
    """
    info = _read_json(directory, "model.json")
    if info.get("format") != ARTIFACT_FORMAT:
        raise ModelLoadError(
            f"{directory} holds model format {info.get('format')!r}; this Rayline reads "
            f"format {ARTIFACT_FORMAT}: upgrade Rayline or retrain"
        )
    model_path = checked_model_path(
        directory,
        info.get("model_file"),
        expected_sha256=model_sha256,
        require_manifest=require_manifest,
        reserved=VERSION_FILES,
    )
    signature = Signature.from_dict(_read_json(directory, "signature.json"))
    loop = LoopConfig.from_dict(_read_json(directory, "preprocessing.json")["loop"])
    try:
        scorer = get_framework(info["framework"]).load(model_path, loop)
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(
            f"cannot load the {info['framework']} model in {directory}: {err}"
        ) from err
    return Predictor(
        name=info["name"],
        version_id=version_id,
        framework=info["framework"],
        signature=signature,
        scorer=scorer,
        metrics=_read_json(directory, "metrics.json"),
    )


def load_model(
    store: ArtifactStore,
    name: str,
    version: str,
    *,
    expected_manifest_sha256: str | None = None,
) -> Predictor:
    """Fetch a published version, verifying every file's sha256, and load it.

    Args:
        store: The artifact store it was published to.
        name: Model name.
        version: The store's version id (the last segment of the registered
            ``artifact_uri``); see :func:`load_registered_model` for registry numbers.
        expected_manifest_sha256: The manifest digest recorded in the metadata
            store; pins exactly the files that were registered.

    Raises:
        ArtifactNotFoundError: No such published version.
        ChecksumMismatchError: A file differs from the manifest (nothing is loaded).
        ModelLoadError: The files are there but cannot be loaded.
    """
    from rayline.storage import fetch_version

    with tempfile.TemporaryDirectory(prefix="rayline-model-") as tmp:
        target = Path(tmp, "version")
        fetch_version(
            store, name, version, target, expected_manifest_sha256=expected_manifest_sha256
        )
        return load_model_dir(target, version_id=version, require_manifest=True)


def load_registered_model(
    bind: Session | Engine,
    name: str,
    version: int | None = None,
    *,
    store: ArtifactStore | None = None,
) -> Predictor:
    """Load version ``version`` (default: the latest) of a registered model.

    The registry's manifest sha256 is checked, so the files are exactly those
    that were registered.

    Raises:
        ModelNotFoundError, ModelVersionNotFoundError: Not in the registry.
        ModelLoadError: The registered artifact URI is not a version directory.
    """
    from rayline.metadata import ModelRegistry
    from rayline.storage import open_store

    row = ModelRegistry().get_version(bind, name=name, version=version)
    root, _, version_id = row.artifact_uri.rstrip("/").rpartition("/")
    if not root.endswith(f"/{name}"):
        raise ModelLoadError(f"{row.artifact_uri} is not <store>/{name}/<version id>")
    target = store or open_store(root.removesuffix(f"/{name}"))
    return load_model(target, name, version_id, expected_manifest_sha256=row.sha256)
