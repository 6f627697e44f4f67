"""Unit tests of the Cluster Manager client over `httpx.MockTransport` (no server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from rayline.clusters import _transport as transport_module
from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import (
    AuthenticationError,
    ClusterFailedError,
    ClusterManagerError,
    ClusterManagerUnavailableError,
    ClusterNotFoundError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
    WaitTimeoutError,
)
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterEventPublic,
    ClusterPublic,
    ClusterState,
    Purpose,
    ServiceCreate,
)
from rayline.config import get_settings

TOKEN = "s3cr3t-token-that-must-never-leak-0123456789"
ADDRESS = "http://cm.test:8765"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that only moves when someone sleeps (or a fake server holds a poll)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make(fake_time: FakeTime) -> Iterator[Callable[..., ClusterManagerClient]]:
    clients: list[ClusterManagerClient] = []

    def build(handler: Handler, **kwargs: Any) -> ClusterManagerClient:
        kwargs.setdefault("token", TOKEN)
        c = ClusterManagerClient(
            ADDRESS,
            transport=httpx.MockTransport(handler),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            **kwargs,
        )
        clients.append(c)
        return c

    yield build
    for c in clients:
        c.close()


def cluster(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "c-0a1b2c3d4e5f",
        "name": "train-1",
        "purpose": "training",
        "state": "PENDING",
        "backend": "local",
        "worker_count": 1,
        "ttl_seconds": 3600,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
    }
    return body | overrides


def service(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 7,
        "model_name": "iris",
        "model_version": 3,
        "url": "http://127.0.0.1:8000/iris",
        "cluster_id": "c-0a1b2c3d4e5f",
        "deployment_id": None,
        "health": "healthy",
        "registered_at": "2025-01-01T00:00:00Z",
    }
    return body | overrides


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    """A handler that always gives the same answer and records the requests."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body, headers=headers)

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def sequence(*responses: httpx.Response | Exception) -> Handler:
    """A handler that answers (or fails) with each item in turn."""
    items = list(responses)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def spec(**overrides: Any) -> ClusterCreate:
    return ClusterCreate.model_validate({"name": "train-1", "purpose": "training"} | overrides)


# ------------------------------------------------------------ typed returns
def test_create_cluster_posts_spec_with_bearer_token_and_returns_cluster(make: Any) -> None:
    handler = answer(202, cluster())
    result = make(handler).create_cluster(spec(worker_count=1, labels={"team": "ml"}))

    assert isinstance(result, ClusterPublic)
    assert result.state is ClusterState.PENDING
    assert result.purpose is Purpose.TRAINING
    (request,) = handler.seen
    assert (request.method, request.url.path) == ("POST", "/v1/clusters")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body["name"] == "train-1"
    assert body["worker_count"] == 1
    assert body["labels"] == {"team": "ml"}
    assert body["request_id"]  # generated


def test_create_cluster_keeps_the_callers_request_id(make: Any) -> None:
    handler = answer(202, cluster())
    make(handler).create_cluster(spec(request_id="airflow-run-42"))
    assert json.loads(handler.seen[0].content)["request_id"] == "airflow-run-42"


def test_each_create_call_gets_its_own_request_id(make: Any) -> None:
    handler = answer(202, cluster())
    c = make(handler)
    c.create_cluster(spec())
    c.create_cluster(spec())
    ids = [json.loads(r.content)["request_id"] for r in handler.seen]
    assert ids[0] != ids[1]


def test_request_id_is_generated_once_and_reused_across_retries(make: Any) -> None:
    handler = sequence(
        httpx.Response(503, json={"detail": "restarting"}),
        httpx.ConnectError("connection refused"),
        httpx.Response(202, json=cluster()),
    )
    make(handler).create_cluster(spec())
    ids = {json.loads(r.content)["request_id"] for r in handler.seen}
    assert len(handler.seen) == 3
    assert len(ids) == 1


def test_get_cluster_returns_nodes_and_addresses(make: Any) -> None:
    body = cluster(
        state="READY",
        job_api_url="http://127.0.0.1:8265",
        nodes=[
            {"node_id": "n1", "role": "head", "alive": True, "resources": {"CPU": 2.0}},
            {"node_id": "n2", "role": "worker", "alive": True},
        ],
    )
    handler = answer(200, body)
    result = make(handler).get_cluster("c-0a1b2c3d4e5f")
    assert handler.seen[0].url.path == "/v1/clusters/c-0a1b2c3d4e5f"
    assert result.state is ClusterState.READY
    assert [n.role for n in result.nodes] == ["head", "worker"]
    assert result.nodes[0].resources == {"CPU": 2.0}


def test_cluster_ids_cannot_change_the_route(make: Any) -> None:
    handler = answer(200, cluster())
    make(handler).get_cluster("../services/1")
    assert handler.seen[0].url.raw_path == b"/v1/clusters/..%2Fservices%2F1"


def test_list_clusters_sends_filters_with_repeated_labels(make: Any) -> None:
    handler = answer(200, {"data": [cluster(), cluster(id="c-2")], "count": 2})
    result = make(handler).list_clusters(
        purpose=Purpose.SERVING, state="READY", labels={"team": "ml", "env": "dev"}
    )
    params = handler.seen[0].url.params
    assert params["purpose"] == "serving"
    assert params["state"] == "READY"
    assert params.get_list("label") == ["team=ml", "env=dev"]
    assert result.count == 2
    assert [c.id for c in result.data] == ["c-0a1b2c3d4e5f", "c-2"]


def test_list_clusters_without_filters_sends_only_the_page(make: Any) -> None:
    handler = answer(200, {"data": [], "count": 0})
    assert make(handler).list_clusters().count == 0
    assert handler.seen[0].url.query == b"limit=1000&offset=0"


def paged(rows: list[dict[str, Any]], *, wrap: bool = True) -> Handler:
    """A server that serves ``rows`` in pages by the request's limit and offset."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        page = rows[offset : offset + limit]
        return httpx.Response(200, json={"data": page, "count": len(page)} if wrap else page)

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def test_list_clusters_follows_every_page(make: Any) -> None:
    handler = paged([cluster(id=f"c-{i}") for i in range(2500)])

    result = make(handler).list_clusters()

    assert result.count == 2500 and result.data[-1].id == "c-2499"
    assert [r.url.params["offset"] for r in handler.seen] == ["0", "1000", "2000"]


def test_list_clusters_stops_at_its_limit(make: Any) -> None:
    handler = paged([cluster(id=f"c-{i}") for i in range(2500)])

    result = make(handler).list_clusters(limit=1200)

    assert [c.id for c in result.data] == [f"c-{i}" for i in range(1200)]
    assert [r.url.params["limit"] for r in handler.seen] == ["1000", "200"]


def test_services_and_events_follow_pages(make: Any) -> None:
    service = {
        "model_name": "iris",
        "model_version": 1,
        "url": "http://127.0.0.1:9",
        "cluster_id": None,
        "deployment_id": None,
        "health": "unknown",
        "registered_at": "2025-01-01T00:00:00Z",
    }
    event = {"from_state": None, "to_state": "PENDING", "reason": None}
    services = paged([{**service, "id": i + 1} for i in range(1001)])
    events = paged([{**event, "created_at": "2025-01-01T00:00:00Z"}] * 1001, wrap=False)

    assert make(services).list_services().count == 1001
    assert len(make(events).cluster_events("c-1")) == 1001
    assert len(services.seen) == len(events.seen) == 2


def test_cluster_events_are_typed(make: Any) -> None:
    events = [
        {
            "from_state": None,
            "to_state": "PENDING",
            "reason": "requested",
            "created_at": "2025-01-01T00:00:00Z",
        },
        {
            "from_state": "PENDING",
            "to_state": "PROVISIONING",
            "reason": None,
            "created_at": "2025-01-01T00:00:01Z",
        },
    ]
    result = make(answer(200, events)).cluster_events("c-1")
    assert all(isinstance(e, ClusterEventPublic) for e in result)
    assert [e.to_state for e in result] == [ClusterState.PENDING, ClusterState.PROVISIONING]


def test_delete_cluster_returns_the_terminating_cluster(make: Any) -> None:
    handler = answer(202, cluster(state="TERMINATING"))
    result = make(handler).delete_cluster("c-1")
    assert handler.seen[0].method == "DELETE"
    assert result.state is ClusterState.TERMINATING


def test_drain_pools_posts_the_drain_and_returns_the_drained_ids(make: Any) -> None:
    handler = answer(200, {"drained": ["rc-1", "rc-2"]})
    assert make(handler).drain_pools() == ["rc-1", "rc-2"]
    (request,) = handler.seen
    assert (request.method, request.url.path) == ("POST", "/v1/pools/drain")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_wait_for_state_long_polls_with_capped_timeout_and_longer_read_timeout(
    make: Any,
) -> None:
    handler = answer(200, cluster(state="READY"))
    result = make(handler, timeout=10).wait_for_state("c-1", state="READY", timeout=600)
    request = handler.seen[0]
    assert (request.method, request.url.path) == ("POST", "/v1/clusters/c-1/wait")
    assert request.url.params["state"] == "READY"
    assert float(request.url.params["timeout"]) == 60  # the server refuses more
    assert request.extensions["timeout"]["read"] == 70  # the server holds the answer
    assert result.state is ClusterState.READY


# ------------------------------------------------------------ waiting
def test_wait_until_ready_polls_until_ready_and_reports_each_poll(make: Any) -> None:
    handler = sequence(
        httpx.Response(200, json=cluster(state="PENDING")),  # the first GET
        httpx.Response(200, json=cluster(state="PROVISIONING")),
        httpx.Response(200, json=cluster(state="READY", job_api_url="http://127.0.0.1:8265")),
    )
    seen: list[ClusterState] = []
    result = make(handler).wait_until_ready(
        "c-1", timeout=600, on_poll=lambda c: seen.append(c.state)
    )
    assert result.job_api_url == "http://127.0.0.1:8265"
    assert seen == ["PENDING", "PROVISIONING", "READY"]
    assert [r.method for r in handler.seen] == ["GET", "POST", "POST"]


def test_wait_until_ready_returns_at_once_when_already_ready(make: Any) -> None:
    handler = answer(200, cluster(state="READY"))
    assert make(handler).wait_until_ready("c-1", timeout=5).state is ClusterState.READY
    assert len(handler.seen) == 1


@pytest.mark.parametrize("state", ["FAILED", "TERMINATED", "TERMINATING"])
def test_wait_until_ready_raises_cluster_failed_with_the_reason(make: Any, state: str) -> None:
    handler = sequence(
        httpx.Response(200, json=cluster(state="PROVISIONING")),
        httpx.Response(200, json=cluster(state=state, reason="head node exited with 137")),
    )
    with pytest.raises(ClusterFailedError) as info:
        make(handler).wait_until_ready("c-1", timeout=600)
    assert info.value.state == state
    assert info.value.reason == "head node exited with 137"
    assert "head node exited with 137" in str(info.value)
    assert "rayline clusters events c-1" in str(info.value)


def test_wait_until_terminated_accepts_terminated(make: Any) -> None:
    handler = sequence(
        httpx.Response(200, json=cluster(state="TERMINATING")),
        httpx.Response(200, json=cluster(state="TERMINATED")),
    )
    result = make(handler).wait_until("c-1", state="TERMINATED", timeout=60)
    assert result.state is ClusterState.TERMINATED


def test_wait_until_ready_times_out(make: Any, fake_time: FakeTime) -> None:
    def server_holds_the_poll(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            fake_time.now += float(request.url.params["timeout"])
        return httpx.Response(200, json=cluster(state="PROVISIONING"))

    with pytest.raises(WaitTimeoutError) as info:
        make(server_holds_the_poll).wait_until_ready("c-1", timeout=150)
    assert info.value.state == "PROVISIONING"
    assert "--timeout" in str(info.value)
    assert fake_time.now == pytest.approx(1150)
    assert fake_time.sleeps == []  # the long-poll did the waiting


def test_wait_does_not_spin_when_the_server_answers_at_once(make: Any, fake_time: FakeTime) -> None:
    with pytest.raises(WaitTimeoutError):
        make(answer(200, cluster(state="PROVISIONING"))).wait_until_ready("c-1", timeout=5)
    assert fake_time.sleeps and all(s <= 1.0 for s in fake_time.sleeps)
    assert sum(fake_time.sleeps) == pytest.approx(5)


# ------------------------------------------------------------ services
def test_register_service_returns_the_endpoint(make: Any) -> None:
    handler = answer(201, service())
    spec_ = ServiceCreate(model_name="iris", model_version=3, url="http://127.0.0.1:8000/iris")
    result = make(handler).register_service(spec_)
    assert handler.seen[0].url.path == "/v1/services"
    assert json.loads(handler.seen[0].content)["model_name"] == "iris"
    assert result.id == 7


def test_list_services_filters_by_model(make: Any) -> None:
    handler = answer(200, {"data": [service()], "count": 1})
    assert make(handler).list_services("iris").data[0].model_name == "iris"
    assert handler.seen[0].url.params["model"] == "iris"


def test_live_endpoints_and_missing_ones(make: Any) -> None:
    assert make(answer(200, {"data": [service()], "count": 1})).live_endpoints("iris").count == 1
    detail = "no live endpoint for model 'wine'; deploy it with `rayline deploy wine`"
    with pytest.raises(NotFoundError, match="deploy it"):
        make(answer(404, {"detail": detail})).live_endpoints("wine")


def test_deregister_service(make: Any) -> None:
    handler = sequence(httpx.Response(204))
    assert make(handler).deregister_service(7) is None
    assert (handler.seen[0].method, handler.seen[0].url.path) == ("DELETE", "/v1/services/7")


def test_health_sends_the_token_for_the_details(make: Any) -> None:
    handler = answer(200, {"status": "ok", "version": "0.1.0"})
    assert make(handler).health()["status"] == "ok"
    assert handler.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


# ------------------------------------------------------------ error mapping
def test_401_says_to_check_the_token_without_showing_it(make: Any) -> None:
    handler = answer(401, {"detail": "missing or invalid bearer token"})
    with pytest.raises(AuthenticationError) as info:
        make(handler).get_cluster("c-1")
    assert "RAYLINE_API_TOKEN" in str(info.value)
    assert TOKEN not in str(info.value)
    assert len(handler.seen) == 1  # never retried


def test_401_without_a_token_says_to_set_one(make: Any) -> None:
    c = ClusterManagerClient(ADDRESS, token=None, transport=httpx.MockTransport(answer(401, {})))
    with c, pytest.raises(AuthenticationError, match="none is configured"):
        c.list_clusters()


def test_404_on_a_cluster_is_cluster_not_found_and_not_retried(make: Any) -> None:
    handler = answer(404, {"detail": "cluster 'c-9' does not exist"})
    with pytest.raises(ClusterNotFoundError) as info:
        make(handler).get_cluster("c-9")
    assert isinstance(info.value, NotFoundError)
    assert info.value.cluster_id == "c-9"
    assert len(handler.seen) == 1


def test_404_for_an_unknown_route_points_at_the_address(make: Any) -> None:
    with pytest.raises(NotFoundError, match="RAYLINE_CLUSTER_MANAGER_URL"):
        make(answer(404, {"detail": "Not Found"})).get_cluster("c-1")


def test_422_names_the_fields(make: Any) -> None:
    detail = [
        {
            "loc": ["body", "worker_count"],
            "msg": "Input should be <= 64",
            "type": "less_than_equal",
        },
        {
            "loc": ["body", "worker", "cpus"],
            "msg": "Input should be >= 0",
            "type": "greater_than_equal",
        },
    ]
    handler = answer(422, {"detail": detail})
    with pytest.raises(ValidationError) as info:
        make(handler).create_cluster(spec())
    assert info.value.fields == ["worker_count", "worker.cpus"]
    assert "worker_count: Input should be <= 64" in str(info.value)
    assert "worker.cpus" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert len(handler.seen) == 1


def test_422_with_a_string_detail(make: Any) -> None:
    with pytest.raises(ValidationError, match="cannot wait for PENDING"):
        make(answer(422, {"detail": "cannot wait for PENDING"})).wait_for_state(
            "c-1", state="PENDING", timeout=1
        )


def test_400_is_a_plain_error_and_not_retried(make: Any) -> None:
    handler = answer(400, {"detail": "bad label filter"})
    with pytest.raises(ClusterManagerError, match="HTTP 400: bad label filter") as info:
        make(handler).list_clusters(labels={"a": "b"})
    assert type(info.value) is ClusterManagerError
    assert len(handler.seen) == 1


def test_429_is_retried_honouring_retry_after_then_quota_exceeded(
    make: Any, fake_time: FakeTime
) -> None:
    detail = "live-cluster quota reached: 4 of 4 clusters are live; delete clusters ..."
    handler = answer(429, {"detail": detail}, headers={"Retry-After": "7"})
    with pytest.raises(QuotaExceededError) as info:
        make(handler, max_retries=3).create_cluster(spec())
    assert "4 of 4" in str(info.value)
    assert len(handler.seen) == 4
    assert fake_time.sleeps == [7, 7, 7]


def test_429_then_success(make: Any) -> None:
    handler = sequence(
        httpx.Response(429, json={"detail": "quota"}, headers={"Retry-After": "1"}),
        httpx.Response(202, json=cluster()),
    )
    assert make(handler).create_cluster(spec()).id == "c-0a1b2c3d4e5f"


def test_503_is_retried_with_capped_exponential_backoff_and_jitter(
    make: Any, fake_time: FakeTime
) -> None:
    handler = answer(503, {"detail": "database unavailable"})
    with pytest.raises(ClusterManagerUnavailableError, match="HTTP 503: database unavailable"):
        make(handler, max_retries=5, backoff_base=0.5, backoff_max=3).get_cluster("c-1")
    assert len(handler.seen) == 6
    caps = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert len(fake_time.sleeps) == len(caps)
    for slept, cap in zip(fake_time.sleeps, caps, strict=True):
        assert cap / 2 <= slept <= cap


def test_503_then_success(make: Any) -> None:
    handler = sequence(httpx.Response(503), httpx.Response(200, json=cluster()))
    assert make(handler).get_cluster("c-1").id == "c-0a1b2c3d4e5f"


def test_connection_errors_are_retried_then_say_how_to_start_the_manager(
    make: Any, fake_time: FakeTime
) -> None:
    handler = sequence(*[httpx.ConnectError("[Errno 111] Connection refused")] * 3)
    with pytest.raises(ClusterManagerUnavailableError) as info:
        make(handler, max_retries=2).list_clusters()
    message = str(info.value)
    assert "rayline cluster-manager serve" in message
    assert ADDRESS in message
    assert "Connection refused" in message
    assert len(handler.seen) == 3
    assert len(fake_time.sleeps) == 2


def test_health_does_not_retry(make: Any) -> None:
    handler = sequence(httpx.ConnectError("refused"))
    with pytest.raises(ClusterManagerUnavailableError):
        make(handler).health()
    assert len(handler.seen) == 1


def test_an_answer_that_is_not_the_schema_says_so(make: Any) -> None:
    with pytest.raises(ClusterManagerError, match="same Rayline version"):
        make(answer(200, {"hello": "ray dashboard"})).get_cluster("c-1")


# ------------------------------------------------------------ secrets and settings
def test_token_is_absent_from_repr_and_from_every_error(make: Any) -> None:
    c = make(answer(400, {"detail": f"you sent {TOKEN}"}))
    assert TOKEN not in repr(c)
    assert TOKEN not in repr(c._transport._http.auth)
    with pytest.raises(ClusterManagerError) as info:
        c.get_cluster("c-1")
    assert TOKEN not in str(info.value)
    assert "**********" in str(info.value)


def test_address_credentials_are_not_shown(make: Any) -> None:
    c = ClusterManagerClient("http://user:pw@cm.test:8765", token="t")
    with c:
        assert "pw" not in c.address
        assert "pw" not in repr(c)


def test_an_address_without_scheme_gets_http() -> None:
    with ClusterManagerClient("127.0.0.1:8765", token="t") as c:
        assert c.address == "http://127.0.0.1:8765"


def test_defaults_come_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("RAYLINE_HOME", str(tmp_path))
    monkeypatch.setenv("RAYLINE_CLUSTER_MANAGER_URL", "http://cm.settings:9999")
    monkeypatch.setenv("RAYLINE_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    try:
        handler = answer(200, {"data": [], "count": 0})
        c = ClusterManagerClient(transport=httpx.MockTransport(handler))
        with c:
            c.list_clusters()
        assert c.address == "http://cm.settings:9999"
        assert handler.seen[0].url.host == "cm.settings"
        assert handler.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    finally:
        get_settings.cache_clear()


def test_development_token_file_is_used_when_no_token_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "api-token").write_text("from-the-file\n")
    monkeypatch.setenv("RAYLINE_HOME", str(tmp_path))
    monkeypatch.delenv("RAYLINE_API_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        handler = answer(200, {"data": [], "count": 0})
        with ClusterManagerClient("http://cm.test", transport=httpx.MockTransport(handler)) as c:
            c.list_clusters()
        assert handler.seen[0].headers["Authorization"] == "Bearer from-the-file"
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------ helpers
def test_retry_after_parses_seconds_and_dates() -> None:
    assert transport_module.retry_after("3") == 3
    assert transport_module.retry_after(None) is None
    assert transport_module.retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    parsed = transport_module.retry_after(later)
    assert parsed is not None and 100 < parsed <= 120
