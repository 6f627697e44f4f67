"""Request bodies against the input signature: good shapes, and every bad one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rayline.serving.errors import InvalidRequestError
from rayline.serving.inputs import InputSchema, parse_body, to_matrix

SCHEMA = InputSchema.from_features(
    [("length", "double"), ("count", "int64"), ("flag", "bool"), ("width", "float")]
)


def test_rows_objects_and_columns_give_the_same_matrix() -> None:
    rows = {"instances": [[1.5, 2, True, 3], [0.5, 4, False, 1.25]]}
    objects = {
        "instances": [
            {"length": 1.5, "count": 2, "flag": True, "width": 3, "extra": "ignored"},
            {"width": 1.25, "flag": False, "count": 4, "length": 0.5},
        ]
    }
    columns = {
        "inputs": {
            "length": [1.5, 0.5],
            "count": [2, 4],
            "flag": [True, False],
            "width": [3, 1.25],
        }
    }
    expected = np.array([[1.5, 2, 1, 3], [0.5, 4, 0, 1.25]])
    for doc in (rows, objects, columns):
        np.testing.assert_array_equal(to_matrix(doc, SCHEMA), expected)


def test_integral_floats_are_integers() -> None:
    assert to_matrix({"instances": [[1, 2.0, False, 1]]}, SCHEMA)[0, 1] == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"instances": [[1.0, 2, True]]}, "instance 0 has 3 values; the model takes 4 features"),
        ({"instances": [[1.0, 2, True, 1, 5]]}, "instance 0 has 5 values"),
        ({"instances": [[1.0, 2, True, "x"]]}, "row 0: feature 'width' must be a finite number"),
        ({"instances": [[1.0, 2.5, True, 1]]}, "feature 'count' must be an integer"),
        ({"instances": [[1.0, 2, 1, 1]]}, "feature 'flag' must be true or false"),
        (
            {"instances": [[True, 2, True, 1]]},
            "feature 'length' must be a finite number, got a boolean",
        ),
        ({"instances": [[None, 2, True, 1]]}, "got null"),
        ({"instances": [[float("nan"), 2, True, 1]]}, "finite"),
        ({"instances": [{"length": 1, "count": 2, "flag": True}]}, "lacks feature(s) 'width'"),
        ({"instances": []}, '"instances" is empty'),
        ({"instances": "rows"}, '"instances" must be a list'),
        ({"instances": [[1.0, 2, True, 1], {"length": 1}]}, "instance 1 is an object"),
        ({"instances": [5]}, "instance 0 is a number"),
        ({"inputs": {"length": [1], "count": [2], "flag": [True]}}, "lacks feature(s) 'width'"),
        (
            {"inputs": {"length": [1, 2], "count": [2], "flag": [True], "width": [1]}},
            "different lengths",
        ),
        ({"inputs": {"length": [], "count": [], "flag": [], "width": []}}, "empty"),
        ({"inputs": {"length": 1, "count": [2], "flag": [True], "width": [1]}}, "must be a list"),
        ({"rows": []}, "must be a JSON object"),
        ({"instances": [], "inputs": {}}, "must be a JSON object"),
        ([[1, 2, 3, 4]], "must be a JSON object"),
    ],
)
def test_bad_requests_name_the_problem(doc: object, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        to_matrix(doc, SCHEMA)
    assert caught.value.status == 422
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"", "empty"), (b"   ", "empty"), (b"{not json", "not valid JSON"), (b"\xc3\x28", "UTF-8")],
)
def test_unreadable_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_body(body)
    assert caught.value.status == 400
    assert message in str(caught.value)


def test_parse_body_reads_json() -> None:
    assert parse_body(json.dumps({"instances": [[1]]}).encode()) == {"instances": [[1]]}


def test_long_feature_lists_are_shortened_in_messages() -> None:
    wide = InputSchema.from_features([(f"f{i}", "double") for i in range(30)])
    with pytest.raises(InvalidRequestError) as caught:
        to_matrix({"instances": [[1.0]]}, wide)
    assert "30 features" in str(caught.value) and "and 22 more" in str(caught.value)


def test_deeply_nested_json_is_400_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000

    with pytest.raises(InvalidRequestError, match="nested too deeply") as caught:
        parse_body(body)
    assert caught.value.status == 400


@pytest.mark.parametrize("value", [10**400, -(10**309)])
def test_integers_beyond_float_range_are_refused_naming_the_feature(value: int) -> None:
    doc = parse_body(json.dumps({"instances": [[value, 2, True, 1.0]]}).encode())

    with pytest.raises(InvalidRequestError, match="feature 'length' must be a finite number"):
        to_matrix(doc, SCHEMA)


def test_more_rows_than_the_cap_are_413() -> None:
    doc = {"instances": [[1.0, 2, True, 3.0]] * 11}

    with pytest.raises(InvalidRequestError, match="11 rows, more than the limit of 10") as caught:
        to_matrix(doc, SCHEMA, max_rows=10)
    assert caught.value.status == 413
    assert to_matrix(doc, SCHEMA, max_rows=11).shape == (11, 4)
