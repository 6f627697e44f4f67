"""Hyperparameters of each framework: Rayline's own keys, typed, with defaults.

Keys a framework does not reserve go through to the library untouched
(``xgboost.train`` params, the scikit-learn estimator's constructor), so any
native option can be used without Rayline knowing it. Only JSON scalars and
lists are accepted: hyperparameters are recorded in the metadata store. The
keys that decide how much work and memory training takes (rounds, trees, depth,
leaves, layer sizes, epochs, batch size, learning rates) are bounded, so a spec
cannot ask a cluster for unbounded work; the bounds are in each field's description.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "FRAMEWORK_PARAMS",
    "SKLEARN_ESTIMATORS",
    "HyperParameters",
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


# Native values are recorded in the metadata store: keep each one small.
_MAX_STRING = 1_000
_MAX_LIST = 1_000


def _json_scalars(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if not all(x is None or isinstance(x, str | int | float | bool) for x in items):
            raise ValueError(
                f"hyperparameter {key!r} must be a number, string, boolean or a list of them"
            )
        if len(items) > _MAX_LIST or any(
            isinstance(x, str) and len(x) > _MAX_STRING for x in items
        ):
            raise ValueError(
                f"hyperparameter {key!r} is too long: at most {_MAX_LIST} items and "
                f"{_MAX_STRING} characters per string"
            )
    return value


class HyperParameters(BaseModel):
    """Base of each framework's hyperparameters: bounded keys, resolved for the trainer."""

    def resolved(self) -> dict[str, Any]:
        """Every value the trainer gets; a bounded key left unset keeps the library's default."""
        data = self.model_dump(mode="json")
        for name in type(self).model_fields:
            if data.get(name) is None and name not in self.model_fields_set:
                data.pop(name, None)
        return data


class _Params(HyperParameters):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _check_native(self) -> _Params:
        _json_scalars(dict(self.model_extra or {}))
        return self

    def native(self) -> dict[str, Any]:
        """The keys Rayline does not reserve, for the underlying library."""
        return _json_scalars(dict(self.model_extra or {}))


class XGBoostParams(_Params):
    """``num_boost_round`` plus any ``xgboost.train`` parameter (``max_depth``, ``eta``...).

    The keys that decide how much work and memory training takes are bounded
    (generously: far beyond what a good model needs); others pass through.
    """

    num_boost_round: int = Field(
        default=100, ge=1, le=100_000, description="Boosting rounds, 1-100000."
    )
    max_depth: int | None = Field(
        default=None, ge=0, le=64,
        description="Tree depth, 0-64 (xgboost's default 6); 0 means no depth limit and "
        "needs max_leaves.",
    )  # fmt: skip
    max_leaves: int | None = Field(
        default=None, ge=0, le=65_536, description="Leaves per tree, 0-65536 (0: no limit)."
    )
    max_bin: int | None = Field(
        default=None, ge=2, le=4_096, description="Histogram bins per feature, 2-4096."
    )
    num_parallel_tree: int | None = Field(
        default=None, ge=1, le=1_000, description="Trees per round (boosted forests), 1-1000."
    )
    eta: float | None = Field(
        default=None, gt=0, le=1, description="Learning rate, above 0 and at most 1."
    )
    learning_rate: float | None = Field(
        default=None, gt=0, le=1, description="Alias of eta: above 0 and at most 1."
    )
    nthread: int | None = Field(
        default=None, ge=1, le=1_024, description="Threads per worker, 1-1024 "
        "(default: cpus_per_worker).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _depth_is_bounded(self) -> XGBoostParams:
        if self.max_depth == 0 and not self.max_leaves:
            raise ValueError(
                "max_depth: 0 grows trees without a depth limit; set max_leaves "
                "(1-65536) to bound them, or give max_depth 1-64"
            )
        return self


class SklearnParams(_Params):
    """``estimator`` (one of :data:`SKLEARN_ESTIMATORS`) plus its constructor arguments.

    The arguments that decide how much work and memory fitting takes are
    bounded; an argument the estimator does not take is refused before training.
    """

    estimator: Literal["random_forest", "gradient_boosting", "linear", "knn"] = "random_forest"
    n_estimators: int | None = Field(
        default=None, ge=1, le=10_000, description="Trees of a random forest, 1-10000."
    )
    max_depth: int | None = Field(
        default=None, ge=1, le=1_000, description="Tree depth, 1-1000 (unset or null: no limit "
        "for random_forest, as scikit-learn does).",
    )  # fmt: skip
    max_leaf_nodes: int | None = Field(
        default=None, ge=2, le=1_000_000, description="Leaves per tree, 2-1000000."
    )
    max_iter: int | None = Field(
        default=None, ge=1, le=100_000,
        description="Boosting iterations (gradient_boosting) or solver iterations (linear), "
        "1-100000.",
    )  # fmt: skip
    learning_rate: float | None = Field(
        default=None, gt=0, le=10, description="gradient_boosting's shrinkage, above 0, at most 10."
    )
    n_neighbors: int | None = Field(
        default=None, ge=1, le=10_000, description="Neighbours of knn, 1-10000."
    )
    n_jobs: int | None = Field(
        default=None, ge=1, le=1_024, description="Threads, 1-1024 (default: cpus_per_worker)."
    )


# A hidden layer's width and the weights between hidden layers: 50 million
# float32 weights are ~200 MB, ~800 MB with Adam's two moments and the gradients.
_MAX_HIDDEN = 16_384
_MAX_HIDDEN_WEIGHTS = 50_000_000


class TorchParams(HyperParameters):
    """A multi-layer perceptron trained with Adam; every key is Rayline's."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=20, ge=1, le=10_000, description="Epochs, 1-10000.")
    batch_size: int = Field(
        default=64, ge=1, le=1_000_000, description="Rows per batch, 1-1000000."
    )
    lr: float = Field(
        default=1e-3, gt=0, le=10, description="Adam's learning rate, above 0, at most 10."
    )
    weight_decay: float = Field(default=0.0, ge=0, le=10, description="L2 penalty, 0-10.")
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [64, 64], max_length=16,
        description=f"Widths of up to 16 hidden layers, each 1-{_MAX_HIDDEN}, at most "
        f"{_MAX_HIDDEN_WEIGHTS} weights between hidden layers.",
    )  # fmt: skip

    @field_validator("hidden_sizes")
    @classmethod
    def _bounded_layers(cls, value: list[int]) -> list[int]:
        if any(size < 1 or size > _MAX_HIDDEN for size in value):
            raise ValueError(f"every hidden layer needs 1 to {_MAX_HIDDEN} units")
        weights = sum(a * b for a, b in itertools.pairwise(value))
        if weights > _MAX_HIDDEN_WEIGHTS:
            raise ValueError(
                f"{weights} weights between hidden layers; at most {_MAX_HIDDEN_WEIGHTS}: "
                "use fewer or narrower layers"
            )
        return value


FRAMEWORK_PARAMS: dict[str, type[HyperParameters]] = {
    "xgboost": XGBoostParams,
    "sklearn": SklearnParams,
    "torch": TorchParams,
}
