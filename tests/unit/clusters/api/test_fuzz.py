"""Property-based fuzzing of the Cluster Manager API from its own OpenAPI schema.

Schemathesis generates valid and invalid requests for every operation; whatever
it sends, the manager must never answer 5xx. The fake backend keeps generated
clusters from starting real Ray processes (the integration suite covers that).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from rayline.clusters.api.app import create_app
from rayline.config import Settings
from tests.unit.clusters.api.fakes import TOKEN, FakeBackend


@pytest.fixture
def api_schema(
    settings: Settings, fake_backend: type[FakeBackend]
) -> Iterator[schemathesis.BaseSchema]:
    settings.max_live_clusters = 10_000
    app = create_app(settings, run_lifecycle=False)
    with TestClient(app):  # runs the lifespan: migrations, runtime
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 9, "the OpenAPI schema lost operations"
    return found


# Schemathesis' pytest plugin does not work with pytest 9 yet, so each operation's
# Hypothesis strategy is driven directly.
def test_no_request_gets_a_5xx(api_schema: schemathesis.BaseSchema) -> None:
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def call(case: schemathesis.Case) -> None:
            if case.path.endswith("/wait"):
                case.query = {**(case.query or {}), "timeout": 0}  # keep long-polls short
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
            case.validate_response(response, checks=[not_a_server_error])

        call()


def test_every_operation_but_health_refuses_anonymous_calls(
    api_schema: schemathesis.BaseSchema,
) -> None:
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            response = case.call()
            if case.path == "/healthz":
                assert response.status_code == 200
            else:
                assert response.status_code == 401, (case.method, case.path, response.text)

        call()
