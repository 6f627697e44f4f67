"""Hyperparameters of each framework: Rayline's own keys, typed, with defaults.

Keys a framework does not reserve go through to the library untouched
(``xgboost.train`` params, the scikit-learn estimator's constructor), so any
native option can be used without Rayline knowing it. Only JSON scalars and
lists are accepted: hyperparameters are recorded in the metadata store.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "FRAMEWORK_PARAMS",
    "SKLEARN_ESTIMATORS",
    "SklearnParams",
    "TorchParams",
    "XGBoostParams",
]

# name -> (classifier, regressor) in sklearn.ensemble / sklearn.linear_model / ...
# A fixed list: a spec must never name an arbitrary class to import.
SKLEARN_ESTIMATORS: dict[str, tuple[str, str]] = {
    "random_forest": (
        "sklearn.ensemble:RandomForestClassifier",
        "sklearn.ensemble:RandomForestRegressor",
    ),
    "gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingClassifier",
        "sklearn.ensemble:HistGradientBoostingRegressor",
    ),
    "linear": ("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Ridge"),
    "knn": ("sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor"),
}


def _json_scalars(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if not all(x is None or isinstance(x, str | int | float | bool) for x in items):
            raise ValueError(
                f"hyperparameter {key!r} must be a number, string, boolean or a list of them"
            )
    return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _check_native(self) -> _Params:
        _json_scalars(dict(self.model_extra or {}))
        return self

    def native(self) -> dict[str, Any]:
        """The keys Rayline does not reserve, for the underlying library."""
        return _json_scalars(dict(self.model_extra or {}))


class XGBoostParams(_Params):
    """``num_boost_round`` plus any ``xgboost.train`` parameter (``max_depth``, ``eta``...)."""

    num_boost_round: int = Field(default=100, ge=1, le=100_000)


class SklearnParams(_Params):
    """``estimator`` (one of :data:`SKLEARN_ESTIMATORS`) plus its constructor arguments."""

    estimator: Literal["random_forest", "gradient_boosting", "linear", "knn"] = "random_forest"


class TorchParams(BaseModel):
    """A multi-layer perceptron trained with Adam; every key is Rayline's."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=1_000_000)
    lr: float = Field(default=1e-3, gt=0, le=10)
    weight_decay: float = Field(default=0.0, ge=0)
    hidden_sizes: list[int] = Field(default_factory=lambda: [64, 64], max_length=16)

    @field_validator("hidden_sizes")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value):
            raise ValueError("every hidden layer needs at least one unit")
        return value


FRAMEWORK_PARAMS: dict[str, type[BaseModel]] = {
    "xgboost": XGBoostParams,
    "sklearn": SklearnParams,
    "torch": TorchParams,
}
