"""Write the files of a trained model version beside its model file.

The layout is described in :mod:`rayline.models`, which also loads a version
back; training writes the files here and publishes the directory with
:mod:`rayline.storage.versions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayline.models.loading import ARTIFACT_FORMAT
from rayline.training.frameworks import LoopConfig
from rayline.training.signature import Signature

__all__ = ["ModelBundle", "write_artifacts", "write_input_example"]


@dataclass
class ModelBundle:
    """The files of one version, before they are written next to the model file.

    Attributes:
        name: Model name.
        framework: ``xgboost``, ``sklearn`` or ``torch``.
        model_file: File name of the model inside the version.
        signature: Inputs and outputs.
        loop: The loop config the model was trained with (features, classes count...).
        metrics: ``train_*`` / ``validation_*`` numbers.
        params: Resolved hyperparameters and training settings.
        spec: The spec as submitted (JSON-ready).
        lineage: Dataset, code, run and resume information.
    """

    name: str
    framework: str
    model_file: str
    signature: Signature
    loop: LoopConfig
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_artifacts(directory: Path, bundle: ModelBundle) -> None:
    """Write every file but the model itself (already there) and the manifest.

    ``input_example.json`` is written separately by :func:`write_input_example`
    once the predictor has scored the example.
    """
    if not (directory / bundle.model_file).is_file():
        raise FileNotFoundError(f"{directory / bundle.model_file} is missing; save the model first")
    _write_json(
        directory / "model.json",
        {
            "format": ARTIFACT_FORMAT,
            "name": bundle.name,
            "framework": bundle.framework,
            "task": bundle.signature.task,
            "model_file": bundle.model_file,
        },
    )
    _write_json(directory / "signature.json", bundle.signature.to_dict())
    _write_json(
        directory / "preprocessing.json",
        {
            "label_classes": list(bundle.signature.classes or []),
            "framework": bundle.loop.preprocessing,
            "loop": bundle.loop.to_dict(),
        },
    )
    _write_json(directory / "metrics.json", bundle.metrics)
    _write_json(directory / "params.json", bundle.params)
    _write_json(directory / "spec.json", bundle.spec)
    _write_json(directory / "lineage.json", bundle.lineage)


def write_input_example(
    directory: Path, rows: list[dict[str, Any]], predictions: list[Any]
) -> None:
    """Record a few input rows and the predictions the job made for them."""
    _write_json(directory / "input_example.json", {"rows": rows, "predictions": predictions})
