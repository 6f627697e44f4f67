"""Hyperparameters are bounded: no spec asks for unbounded work; a refusal names the key."""

from __future__ import annotations

from typing import Any

import pytest

from rayline.training.errors import InvalidSpecError
from rayline.training.spec import load_spec


def _spec(framework: str, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "spec_version": 1, "name": "m", "dataset": "sklearn:iris", "target": "target",
        "task": "classification", "framework": framework, "hyperparameters": hyperparameters,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("framework", "key", "value"),
    [
        ("xgboost", "num_boost_round", 10**9),
        ("xgboost", "max_depth", 1_000),
        ("xgboost", "max_depth", -1),
        ("xgboost", "max_leaves", 10**8),
        ("xgboost", "max_bin", 10**7),
        ("xgboost", "num_parallel_tree", 10**6),
        ("xgboost", "eta", 0),
        ("xgboost", "learning_rate", -0.1),
        ("xgboost", "nthread", 100_000),
        ("sklearn", "n_estimators", 10**9),
        ("sklearn", "n_estimators", 0),
        ("sklearn", "max_depth", 10**6),
        ("sklearn", "max_leaf_nodes", 10**9),
        ("sklearn", "max_iter", 10**9),
        ("sklearn", "learning_rate", 0),
        ("sklearn", "n_neighbors", 10**8),
        ("sklearn", "n_jobs", 100_000),
        ("torch", "epochs", 10**9),
        ("torch", "batch_size", 0),
        ("torch", "lr", 0),
        ("torch", "weight_decay", 1e9),
        ("torch", "hidden_sizes", [10**6]),
        ("torch", "hidden_sizes", [0]),
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_the_key(
    framework: str, key: str, value: Any
) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(_spec(framework, **{key: value}))
    message = str(caught.value)
    assert f"hyperparameters for {framework}" in message and key in message


def test_unbounded_xgboost_depth_needs_a_leaf_bound() -> None:
    with pytest.raises(InvalidSpecError, match="max_leaves"):
        load_spec(_spec("xgboost", max_depth=0))
    spec = load_spec(_spec("xgboost", max_depth=0, max_leaves=255, grow_policy="lossguide"))
    assert spec.resolved_hyperparameters()["max_leaves"] == 255


def test_too_many_weights_between_hidden_layers_are_refused() -> None:
    load_spec(_spec("torch", hidden_sizes=[4096, 4096]))  # 16.7 million weights
    with pytest.raises(InvalidSpecError, match="weights between hidden layers"):
        load_spec(_spec("torch", hidden_sizes=[16_384, 16_384]))


def test_oversized_native_values_are_refused() -> None:
    with pytest.raises(InvalidSpecError, match="too long"):
        load_spec(_spec("xgboost", interaction_constraints="x" * 10_000))
    with pytest.raises(InvalidSpecError, match="too long"):
        load_spec(_spec("xgboost", eval_metric=["rmse"] * 10_000))


def test_bounded_keys_left_unset_keep_the_library_default() -> None:
    assert load_spec(_spec("xgboost")).resolved_hyperparameters() == {"num_boost_round": 100}
    resolved = load_spec(_spec("xgboost", max_depth=64, eta=1)).resolved_hyperparameters()
    assert resolved == {"num_boost_round": 100, "max_depth": 64, "eta": 1.0}
    sklearn = load_spec(_spec("sklearn", estimator="linear", max_iter=500))
    assert sklearn.resolved_hyperparameters() == {"estimator": "linear", "max_iter": 500}
    # An explicit null is the library's own default (no depth limit for a random forest).
    forest = load_spec(_spec("sklearn", n_estimators=10_000, max_depth=None))
    assert forest.resolved_hyperparameters()["max_depth"] is None
