"""The model's input signature: feature names and types, target, classes.

It is extracted from the dataset's schema before training (which also checks
that the target exists and the features are numbers), stored as
``signature.json`` beside the model, and used by the predictor to turn rows
into the feature matrix the model was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from rayline.training.errors import DatasetError, MissingTargetError, NonNumericFeaturesError

__all__ = ["Feature", "Signature", "build_signature", "is_numeric"]


@dataclass(frozen=True)
class Feature:
    """One input column: its name and Arrow type name (``double``, ``int64``, ``bool``...)."""

    name: str
    type: str


@dataclass(frozen=True)
class Signature:
    """What a model takes and gives.

    Attributes:
        features: Input columns, in the order the model sees them.
        target: Name of the predicted column.
        task: ``classification`` or ``regression``.
        target_type: Arrow type name of the target column.
        classes: Class labels for classification, in the order of the model's
            outputs (index ``i`` of a probability vector is ``classes[i]``).
    """

    features: tuple[Feature, ...]
    target: str
    task: str
    target_type: str
    classes: tuple[Any, ...] | None = field(default=None)

    @property
    def feature_names(self) -> list[str]:
        """The input column names, in model order."""
        return [f.name for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``signature.json`` and the metadata store."""
        return {
            "inputs": [{"name": f.name, "type": f.type} for f in self.features],
            "output": {
                "name": self.target,
                "task": self.task,
                "type": self.target_type,
                "classes": list(self.classes) if self.classes is not None else None,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Inverse of :meth:`to_dict`."""
        output = data["output"]
        classes = output.get("classes")
        return cls(
            features=tuple(Feature(name=f["name"], type=f["type"]) for f in data["inputs"]),
            target=output["name"],
            task=output["task"],
            target_type=output["type"],
            classes=tuple(classes) if classes is not None else None,
        )

    def with_classes(self, classes: Sequence[Any]) -> Signature:
        """A copy with the class labels filled in."""
        return Signature(
            features=self.features,
            target=self.target,
            task=self.task,
            target_type=self.target_type,
            classes=tuple(classes),
        )


def is_numeric(kind: pa.DataType) -> bool:
    """True for Arrow integer, floating point, decimal and boolean types."""
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    )


def _type_name(kind: pa.DataType) -> str:
    return "no values" if pa.types.is_null(kind) else str(kind)


def build_signature(
    uri: str,
    columns: Mapping[str, pa.DataType],
    *,
    target: str,
    task: str,
) -> Signature:
    """Check the dataset's columns and extract the signature (classes come later).

    Args:
        uri: The dataset, for error messages.
        columns: Column name -> Arrow type, in dataset order.
        target: The column to predict.
        task: ``classification`` or ``regression``.

    Returns:
        The signature; every other column is a feature.

    Raises:
        MissingTargetError: ``target`` is not a column.
        NonNumericFeaturesError: A feature, or a regression target, is not numeric.
        DatasetError: There is no feature column at all.
    """
    if target not in columns:
        raise MissingTargetError(uri, target, list(columns))
    features = {name: kind for name, kind in columns.items() if name != target}
    if not features:
        raise DatasetError(f"dataset {uri} has only the target column {target!r}; no features")
    bad = {name: _type_name(kind) for name, kind in features.items() if not is_numeric(kind)}
    if bad:
        raise NonNumericFeaturesError(uri, bad)
    target_type = columns[target]
    if task == "regression" and not is_numeric(target_type):
        raise NonNumericFeaturesError(uri, {target: _type_name(target_type)}, what="target")
    return Signature(
        features=tuple(Feature(name=n, type=str(k)) for n, k in features.items()),
        target=target,
        task=task,
        target_type=_type_name(target_type),
    )
