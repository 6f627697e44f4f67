"""Property-based fuzzing of a model endpoint: no request may get a server error.

The real model server app (`rayline.serving.app`, its routes, limits, batching and
a real scikit-learn model) runs in-process; schemathesis generates requests from
the OpenAPI document below for every route, and Hypothesis sends raw bytes and
any JSON. The endpoint serves no OpenAPI document of its own (its bodies are free-form JSON checked
against the model's signature), so the shapes it accepts are written out here.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.unit.serving.replica import replica_app

MAX_ROWS = 50
IRIS_ROW = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
# Hypothesis merges the branches of an anyOf, and the loosest wins: the shapes the
# model takes go to one route, anything-goes rows to the other (same parser).
WELL_FORMED: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "instances": {
                    "type": "array",
                    "items": IRIS_ROW,
                    "minItems": 1,
                    "maxItems": MAX_ROWS + 5,
                }
            },
            "required": ["instances"],
        },
        {
            "type": "object",
            "properties": {
                "inputs": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "number"}},
                }
            },
            "required": ["inputs"],
        },
    ]
}
LOOSE: dict[str, Any] = {
    "type": "object",
    "properties": {"instances": {"type": "array", "items": {}}, "inputs": {}},
}
# Any JSON document at all, for the raw-body test.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=40,
)
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _predict(parameters: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "predictions"}},
    }


GET = {"responses": {"200": {"description": "ok"}}}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Rayline model endpoint", "version": "1"},
    "paths": {
        "/v1/models/{name}:predict": {"post": _predict([NAME], WELL_FORMED)},
        "/v1/models/{name}/versions/{version}:predict": {"post": _predict([NAME, VERSION], LOOSE)},
        "/v1/models/{name}": {"get": {**GET, "parameters": [NAME]}},
        "/v1/models/{name}/versions/{version}": {"get": {**GET, "parameters": [NAME, VERSION]}},
        "/healthz": {"get": GET},
        "/metrics": {"get": GET},
    },
}


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    with replica_app(tmp_path, max_rows=MAX_ROWS, max_body_bytes=64 * 1024) as replica:
        schema = schemathesis.openapi.from_dict(DOCUMENT)
        schema.app = replica.app
        yield schema


def _aimed_at_the_model(case: schemathesis.Case) -> None:
    # Most generated names are not the served model (404 before any parsing):
    # aim most cases at it, so the body reaches the parser and the model.
    if case.path_parameters and zlib.crc32(repr(case.body).encode()) % 4:
        case.path_parameters = {**case.path_parameters, "name": "iris"}
        if "version" in case.path_parameters:
            case.path_parameters["version"] = "1"


def test_no_request_gets_a_server_error(endpoint: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in endpoint.get_all_operations()]
    assert len(operations) == 6
    predicted: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def call(case: schemathesis.Case) -> None:
            _aimed_at_the_model(case)
            response = case.call()
            if case.path.endswith(":predict"):
                predicted[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        call()
    # The cases reached the model and its checks, not only the 404 of a wrong name.
    assert predicted[200] and predicted[422], predicted


def test_no_bytes_get_a_server_error(tmp_path: Path) -> None:
    with (
        replica_app(tmp_path, max_rows=MAX_ROWS, max_body_bytes=64 * 1024) as replica,
        TestClient(replica.app) as client,
    ):

        @given(
            body=st.binary(max_size=4096)
            | st.text(max_size=2048).map(str.encode)
            | JSON.map(lambda doc: json.dumps({"instances": doc}).encode())
            | JSON.map(lambda doc: json.dumps(doc).encode())
        )
        @settings(max_examples=200, deadline=None, derandomize=True)
        def call(body: bytes) -> None:
            response = client.post("/v1/models/iris:predict", content=body)
            assert response.status_code < 500, (body, response.text)

        call()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),  # deeper than the JSON parser recurses
        # Values the signature refuses, naming the row and the feature.
        (b'{"instances": [[1e400, 1, 1, 1]]}', 422),  # inf
        (b'{"instances": [[' + b"9" * 400 + b", 1, 1, 1]]}", 422),  # beyond float64
        (b'{"instances": [' + b"[1, 2, 3, 4]," * MAX_ROWS + b"[1, 2, 3, 4]]}", 413),
        (b'{"instances": [[1, 2, 3, 4]]}', 200),
    ],
)
def test_hostile_bodies_get_client_errors(tmp_path: Path, body: bytes, status: int) -> None:
    with (
        replica_app(tmp_path, max_rows=MAX_ROWS, max_body_bytes=1024 * 1024) as replica,
        TestClient(replica.app) as client,
    ):
        response = client.post(
            "/v1/models/iris:predict", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == status, response.text
