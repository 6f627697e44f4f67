"""Signature extraction doubles as the numeric-features check."""

from __future__ import annotations

import pyarrow as pa
import pytest

from rayline.training.errors import DatasetError, MissingTargetError, NonNumericFeaturesError
from rayline.training.signature import Signature, build_signature

URI = "s3://b/d.csv"


def test_features_in_order_with_types() -> None:
    columns = {"a": pa.float64(), "label": pa.string(), "b": pa.int64(), "c": pa.bool_()}
    signature = build_signature(URI, columns, target="label", task="classification")
    assert signature.feature_names == ["a", "b", "c"]
    assert [f.type for f in signature.features] == ["double", "int64", "bool"]
    with_classes = signature.with_classes(["x", "y"])
    assert Signature.from_dict(with_classes.to_dict()) == with_classes
    assert with_classes.to_dict()["output"] == {
        "name": "label", "task": "classification", "type": "string", "classes": ["x", "y"],
    }  # fmt: skip


def test_missing_target_lists_the_columns() -> None:
    with pytest.raises(MissingTargetError) as caught:
        build_signature(
            URI, {"a": pa.float64(), "y": pa.int64()}, target="label", task="regression"
        )
    assert "'label'" in str(caught.value) and "'a', 'y'" in str(caught.value)


def test_non_numeric_features_are_named() -> None:
    columns = {"a": pa.float64(), "city": pa.string(), "empty": pa.null(), "y": pa.int64()}
    with pytest.raises(NonNumericFeaturesError) as caught:
        build_signature(URI, columns, target="y", task="regression")
    assert caught.value.columns == {"city": "string", "empty": "no values"}


def test_regression_target_must_be_numeric() -> None:
    with pytest.raises(NonNumericFeaturesError, match="target columns"):
        build_signature(URI, {"a": pa.float64(), "y": pa.string()}, target="y", task="regression")


def test_target_only() -> None:
    with pytest.raises(DatasetError, match="no features"):
        build_signature(URI, {"y": pa.int64()}, target="y", task="regression")
