"""The predictor of a loaded model version: rows of features in, predictions out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from rayline.training.errors import InvalidInputError

if TYPE_CHECKING:
    from rayline.training.frameworks import Scorer
    from rayline.training.signature import Signature

__all__ = ["Predictor", "Rows"]

Rows: TypeAlias = Sequence[Mapping[str, Any]] | pd.DataFrame


class Predictor:
    """A loaded model version: turns rows of features into predictions.

    Attributes:
        name: Model name.
        version_id: Store version id (``None`` when loaded from a bare directory).
        framework: The training framework.
        signature: Inputs (in model order) and output.
        metrics: The metrics recorded at training time.
    """

    def __init__(
        self,
        *,
        name: str,
        version_id: str | None,
        framework: str,
        signature: Signature,
        scorer: Scorer,
        metrics: dict[str, float],
    ) -> None:
        self.name = name
        self.version_id = version_id
        self.framework = framework
        self.signature = signature
        self.metrics = metrics
        self._scorer = scorer

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.signature.task

    def predict(self, rows: Rows) -> list[Any]:
        """Predict class labels (classification) or values (regression).

        Args:
            rows: Mappings of feature name -> number (extra keys are ignored), or a frame.

        Returns:
            One prediction per row, in row order.

        Raises:
            InvalidInputError: A row lacks a feature or has a value that is not a number.
        """
        scores = self.scores(rows)
        if self.task == "regression":
            return [float(v) for v in scores]
        classes = self.signature.classes or ()
        return [_plain(classes[i]) for i in np.argmax(scores, axis=1)]

    def scores(self, rows: Rows) -> np.ndarray:
        """The model's raw output: probabilities ``[n, k]`` or regression values ``[n]``."""
        return self._scorer.scores(self.features(rows))

    def predict_proba(self, rows: Rows) -> list[list[float]]:
        """Class probabilities per row, in the order of ``signature.classes``.

        Raises:
            InvalidInputError: As :meth:`predict`, or the model is a regressor.
        """
        if self.task != "classification":
            raise InvalidInputError(f"{self.name} is a regression model; use predict()")
        return [[float(p) for p in row] for row in self.scores(rows)]

    def features(self, rows: Rows) -> np.ndarray:
        """The ``float64`` feature matrix of ``rows``, columns in signature order."""
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        names = self.signature.feature_names
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"rows lack feature(s) {', '.join(map(repr, missing[:10]))} of model {self.name}; "
                f"it needs: {', '.join(map(repr, names[:30]))}"
            )
        selected = frame[names]
        bad = [
            n
            for n in names
            if not (pd.api.types.is_numeric_dtype(selected[n]) or selected[n].isna().all())
        ]
        if bad:
            raise InvalidInputError(
                f"feature(s) {', '.join(map(repr, bad[:10]))} of model {self.name} must be numbers"
            )
        matrix: np.ndarray = selected.to_numpy(dtype=np.float64, na_value=np.nan)
        return matrix


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
