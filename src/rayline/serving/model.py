"""What the serving app needs of a model: a predictor, and what it serves.

The predictor comes from :func:`rayline.models.load_model_dir`; the serving
side only relies on the small :class:`Predictor` protocol below, so any object
with these attributes can be served.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict

from rayline.serving.errors import ServingError
from rayline.serving.inputs import InputSchema

__all__ = ["Predictor", "ServedModel", "input_schema", "load_predictor", "verify_model_dir"]

MANIFEST = "manifest.json"


class Predictor(Protocol):
    """A loaded model: predicts one output per row of a feature frame."""

    name: str
    framework: str
    metrics: dict[str, float]

    @property
    def signature(self) -> Any:
        """Inputs in model order (``.features`` of ``.name``/``.type``) and ``.to_dict()``."""

    def predict(self, rows: pd.DataFrame) -> list[Any]:
        """One prediction per row, in row order."""


class ServedModel(BaseModel):
    """Which model version a deployment serves (written into images as JSON).

    Attributes:
        name: Registered model name.
        version: Registry version number.
        version_id: The artifact store's version id.
        sha256: sha256 of the version's manifest, as registered.
        framework: ``xgboost``, ``sklearn``...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    version_id: str
    sha256: str
    framework: str | None = None


def load_predictor(model_dir: Path) -> Predictor:
    """Load the model stored in ``model_dir`` (a fetched artifact version)."""
    from rayline.models import load_model_dir

    predictor: Predictor = load_model_dir(model_dir)
    return predictor


def input_schema(predictor: Predictor) -> InputSchema:
    """The input schema requests are validated against."""
    features = predictor.signature.features
    return InputSchema.from_features([(f.name, f.type) for f in features])


def verify_model_dir(model_dir: Path, manifest_sha256: str) -> None:
    """Check that ``model_dir`` holds exactly the files its registered manifest lists.

    Raises:
        ServingError: The manifest or a file differs from what was registered.
    """
    manifest_path = model_dir / MANIFEST
    data = manifest_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise ServingError(
            f"{manifest_path} is not the manifest that was registered (sha256 differs); "
            "the image was tampered with: rebuild it (delete the image and deploy again)"
        )
    for entry in json.loads(data)["files"]:
        path = model_dir / entry["path"]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise ServingError(
                f"{path} failed its integrity check against the manifest; the image was "
                "tampered with: rebuild it (delete the image and deploy again)"
            )
