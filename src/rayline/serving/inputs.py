"""Turn a prediction request body into the model's feature matrix, or say what is wrong.

Three request shapes are accepted::

    {"instances": [[5.1, 3.5, 1.4, 0.2], ...]}          rows as lists, signature order
    {"instances": [{"sepal length (cm)": 5.1, ...}]}      rows as objects (extra keys ignored)
    {"inputs": {"sepal length (cm)": [5.1, ...], ...}}    columns

Every value is checked against the feature's type in the signature (numbers
for float features, integral numbers for integer features, ``true``/``false``
for boolean ones); ``null``, strings and non-finite numbers are refused. Each
problem raises :class:`~rayline.serving.errors.InvalidRequestError` with a
message that names the row and the feature.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rayline.serving.errors import InvalidRequestError

__all__ = ["InputSchema", "parse_body", "to_matrix"]

_SHAPES = (
    'send {"instances": [[...], ...]}, {"instances": [{feature: value}, ...]} '
    'or {"inputs": {feature: [...]}}'
)
_SHOWN = 8  # feature names quoted in an error message
# Integers beyond this have no float64 value: the feature matrix could not hold them.
_FLOAT_MAX = int(np.finfo(np.float64).max)


def _kind(arrow_type: str) -> str:
    """'b' (boolean), 'i' (integer) or 'f' (any other number) for an Arrow type name."""
    name = arrow_type.lower()
    if name in ("bool", "boolean"):
        return "b"
    if name.startswith(("int", "uint")):
        return "i"
    return "f"


@dataclass(frozen=True)
class InputSchema:
    """Feature names in model order, and the kind of value each takes."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]

    @classmethod
    def from_features(cls, features: Sequence[tuple[str, str]]) -> InputSchema:
        """Build from ``(name, arrow type name)`` pairs, in model order."""
        return cls(tuple(n for n, _ in features), tuple(_kind(t) for _, t in features))

    def describe(self) -> str:
        """The feature names for error messages (the first few)."""
        shown = ", ".join(repr(n) for n in self.names[:_SHOWN])
        more = f" and {len(self.names) - _SHOWN} more" if len(self.names) > _SHOWN else ""
        return f"{len(self.names)} features: {shown}{more}"


def parse_body(body: bytes) -> Any:
    """Decode a JSON request body.

    Raises:
        InvalidRequestError: (400) The body is empty, not UTF-8 or not JSON.
    """
    if not body.strip():
        raise InvalidRequestError(f"the request body is empty; {_SHAPES}", status=400)
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise InvalidRequestError("the request body is not UTF-8 text", status=400) from None
    except RecursionError:  # the parser recurses once per level of [ or {
        raise InvalidRequestError(
            f"the request body is nested too deeply to be a prediction request; {_SHAPES}",
            status=400,
        ) from None
    except ValueError as err:
        raise InvalidRequestError(
            f"the request body is not valid JSON ({err})", status=400
        ) from None


def to_matrix(doc: Any, schema: InputSchema, *, max_rows: int | None = None) -> np.ndarray:
    """Validate a decoded request and return its ``float64`` feature matrix.

    Raises:
        InvalidRequestError: (422) The request's shape or a value does not fit the
            signature; (413) it has more than ``max_rows`` rows.
    """
    if not isinstance(doc, dict) or len(doc.keys() & {"instances", "inputs"}) != 1:
        raise InvalidRequestError(f"the request must be a JSON object; {_SHAPES}")
    if "inputs" in doc:
        rows = _columns_to_rows(doc["inputs"], schema)
    else:
        rows = _instances_to_rows(doc["instances"], schema)
    if max_rows is not None and len(rows) > max_rows:
        raise InvalidRequestError(
            f"the request has {len(rows)} rows, more than the limit of {max_rows} "
            "(the serving spec's max_rows); send fewer rows per request",
            status=413,
        )
    for i, row in enumerate(rows):
        _check_row(i, row, schema)
    return np.array(rows, dtype=np.float64)


def _instances_to_rows(instances: Any, schema: InputSchema) -> list[list[Any]]:
    if not isinstance(instances, list):
        raise InvalidRequestError(f'"instances" must be a list of rows; {_SHAPES}')
    if not instances:
        raise InvalidRequestError('"instances" is empty; send at least one row')
    if isinstance(instances[0], dict):
        return [_object_row(i, row, schema) for i, row in enumerate(instances)]
    rows: list[list[Any]] = []
    width = len(schema.names)
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise InvalidRequestError(
                f"instance {i} is {_json_type(row)}; every instance must be a list of "
                f"{width} values (or every one an object of feature: value)"
            )
        if len(row) != width:
            raise InvalidRequestError(
                f"instance {i} has {len(row)} values; the model takes {schema.describe()}"
            )
        rows.append(row)
    return rows


def _object_row(i: int, row: Any, schema: InputSchema) -> list[Any]:
    if not isinstance(row, dict):
        raise InvalidRequestError(
            f"instance {i} is {_json_type(row)}; every instance must be an object of "
            "feature: value (or every one a list of values)"
        )
    missing = [n for n in schema.names if n not in row]
    if missing:
        raise InvalidRequestError(
            f"instance {i} lacks feature(s) {', '.join(map(repr, missing[:_SHOWN]))}; "
            f"the model takes {schema.describe()}"
        )
    return [row[n] for n in schema.names]


def _columns_to_rows(inputs: Any, schema: InputSchema) -> list[list[Any]]:
    if not isinstance(inputs, dict):
        raise InvalidRequestError(f'"inputs" must be an object of feature: [values]; {_SHAPES}')
    missing = [n for n in schema.names if n not in inputs]
    if missing:
        raise InvalidRequestError(
            f'"inputs" lacks feature(s) {", ".join(map(repr, missing[:_SHOWN]))}; '
            f"the model takes {schema.describe()}"
        )
    columns = [inputs[n] for n in schema.names]
    for name, column in zip(schema.names, columns, strict=True):
        if not isinstance(column, list):
            raise InvalidRequestError(
                f'"inputs" feature {name!r} is {_json_type(column)}; it must be a list of values'
            )
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise InvalidRequestError(
            f'the "inputs" columns have different lengths ({sorted(lengths)}); '
            "every feature needs one value per row"
        )
    if lengths == {0}:
        raise InvalidRequestError('the "inputs" columns are empty; send at least one row')
    return [list(values) for values in zip(*columns, strict=True)]


def _check_row(i: int, row: list[Any], schema: InputSchema) -> None:
    for value, kind, name in zip(row, schema.kinds, schema.names, strict=True):
        kind_of_value = type(value)
        if kind_of_value is float:
            if kind == "b" or not math.isfinite(value) or (kind == "i" and not value.is_integer()):
                raise _bad_value(i, name, kind, value)
        elif kind_of_value is int:
            if kind == "b" or not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                raise _bad_value(i, name, kind, value)
        elif kind_of_value is bool:
            if kind != "b":
                raise _bad_value(i, name, kind, value)
        else:
            raise _bad_value(i, name, kind, value)


def _bad_value(i: int, name: str, kind: str, value: Any) -> InvalidRequestError:
    wanted = {"b": "true or false", "i": "an integer", "f": "a finite number"}[kind]
    shown = json.dumps(value)[:40] if not isinstance(value, float) else repr(value)
    return InvalidRequestError(
        f"row {i}: feature {name!r} must be {wanted}, got {_json_type(value)} {shown}"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
