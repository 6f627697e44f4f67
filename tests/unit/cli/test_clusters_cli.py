"""Unit tests of `rayline clusters ...` with a fake client in place of the SDK."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from typer.testing import CliRunner

from rayline.cli import clusters as cli
from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import (
    ClusterFailedError,
    ClusterManagerUnavailableError,
    ClusterNotFoundError,
    WaitTimeoutError,
)
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterEventPublic,
    ClusterPublic,
    ClustersPublic,
    ClusterState,
    NodePublic,
    Purpose,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
JOB_API = "http://127.0.0.1:8265"
TOKEN_PATH = "/home/u/.rayline/clusters/c-1/ray-auth-token"


def make_cluster(state: ClusterState = ClusterState.PENDING, **overrides: Any) -> ClusterPublic:
    fields: dict[str, Any] = {
        "id": "c-0a1b2c3d4e5f",
        "name": "train-1",
        "purpose": Purpose.TRAINING,
        "state": state,
        "backend": "local",
        "worker_count": 1,
        "ttl_seconds": 3600,
        "created_at": NOW,
        "updated_at": NOW,
    }
    if state == ClusterState.READY:
        fields["job_api_url"] = JOB_API
    return ClusterPublic.model_validate(fields | overrides)


class FakeClient:
    """Stands in for `ClusterManagerClient`; same signatures, canned answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.cluster = make_cluster()
        self.waited = make_cluster(ClusterState.READY)
        self.listed: list[ClusterPublic] = []
        self.events: list[ClusterEventPublic] = []
        self.error: Exception | None = None
        self.closed = False

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if self.error is not None:
            raise self.error

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closed = True

    def create_cluster(self, spec: ClusterCreate) -> ClusterPublic:
        self._record("create_cluster", spec=spec)
        return self.cluster

    def get_cluster(self, cluster_id: str) -> ClusterPublic:
        self._record("get_cluster", cluster_id=cluster_id)
        return self.cluster

    def list_clusters(
        self,
        *,
        purpose: Purpose | str | None = None,
        state: ClusterState | str | None = None,
        labels: Any = None,
        limit: int | None = None,
    ) -> ClustersPublic:
        self._record("list_clusters", purpose=purpose, state=state, labels=labels)
        return ClustersPublic(data=self.listed, count=len(self.listed))

    def cluster_events(self, cluster_id: str) -> list[ClusterEventPublic]:
        self._record("cluster_events", cluster_id=cluster_id)
        return self.events

    def cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        # Not recorded: only the hint uses it.
        return ClusterCredentials(
            cluster_id=cluster_id, ray_auth_token="t", ray_auth_token_path=TOKEN_PATH
        )

    def delete_cluster(self, cluster_id: str) -> ClusterPublic:
        self._record("delete_cluster", cluster_id=cluster_id)
        return self.cluster

    def wait_until(
        self,
        cluster_id: str,
        *,
        state: ClusterState | str,
        timeout: float,
        on_poll: Callable[[ClusterPublic], None] | None = None,
        poll_timeout: float = 60,
    ) -> ClusterPublic:
        self._record("wait_until", cluster_id=cluster_id, state=state, timeout=timeout)
        if on_poll is not None:
            on_poll(make_cluster(ClusterState.PROVISIONING, reason="starting head node"))
            on_poll(self.waited)
        return self.waited


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(cli, "make_client", lambda: client)
    return client


@pytest.fixture
def run() -> Callable[..., Any]:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli.app, list(args), env={"COLUMNS": "200"})

    return invoke


def calls(fake: FakeClient) -> list[str]:
    return [name for name, _ in fake.calls]


def test_the_fake_matches_the_real_client_signatures() -> None:
    for name in (
        "create_cluster",
        "get_cluster",
        "list_clusters",
        "cluster_events",
        "cluster_credentials",
        "delete_cluster",
        "wait_until",
    ):
        real = inspect.signature(getattr(ClusterManagerClient, name)).parameters
        mine = inspect.signature(getattr(FakeClient, name)).parameters
        assert list(real) == list(mine), name
        assert [p.kind for p in real.values()] == [p.kind for p in mine.values()], name


# ------------------------------------------------------------ create
def test_create_builds_the_spec_from_options_and_waits(fake: FakeClient, run: Any) -> None:
    result = run(
        "create",
        "--name",
        "train-1",
        "--purpose",
        "training",
        "--workers",
        "2",
        "--cpus",
        "2",
        "--worker-cpus",
        "4",
        "--memory-mb",
        "2048",
        "--ttl",
        "600",
        "--idle-timeout",
        "120",
        "--label",
        "team=ml",
        "--label",
        "run=a=b",
        "--request-id",
        "run-42",
        "--timeout",
        "90",
    )
    assert result.exit_code == 0, result.output
    assert calls(fake) == ["create_cluster", "wait_until"]
    spec: ClusterCreate = fake.calls[0][1]["spec"]
    assert spec.name == "train-1"
    assert spec.purpose is Purpose.TRAINING
    assert spec.worker_count == 2
    assert (spec.head.cpus, spec.worker.cpus) == (2, 4)
    assert spec.head.memory_mb == spec.worker.memory_mb == 2048
    assert (spec.ttl_seconds, spec.idle_timeout_seconds) == (600, 120)
    assert spec.labels == {"team": "ml", "run": "a=b"}
    assert spec.request_id == "run-42"
    assert fake.calls[1][1] == {"cluster_id": fake.cluster.id, "state": "READY", "timeout": 90}
    assert "READY" in result.stdout
    # Ray's own CLI needs the cluster's token: the hint names its file, never the token.
    hint = (
        f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={TOKEN_PATH} ray job submit --address {JOB_API}"
    )
    assert hint in result.stdout.replace("\n", "")
    assert fake.closed


def test_create_no_wait_hints_at_wait(fake: FakeClient, run: Any) -> None:
    result = run("create", "--name", "train-1", "--purpose", "serving", "--no-wait")
    assert result.exit_code == 0, result.output
    assert calls(fake) == ["create_cluster"]
    assert "PENDING" in result.stdout
    assert f"rayline clusters wait {fake.cluster.id}" in result.stdout


def test_create_from_a_spec_file_with_option_overrides(
    fake: FakeClient, run: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "name: from-file\npurpose: training\nworker_count: 1\n"
        "worker: {cpus: 3}\nlabels: {team: ml}\nruntime_env: {pip: [xgboost]}\n"
    )
    result = run("create", "--spec", str(path), "--workers", "5", "--label", "env=dev", "--no-wait")
    assert result.exit_code == 0, result.output
    spec: ClusterCreate = fake.calls[0][1]["spec"]
    assert spec.name == "from-file"
    assert spec.worker_count == 5
    assert spec.worker.cpus == 3
    assert spec.labels == {"team": "ml", "env": "dev"}
    assert spec.runtime_env == {"pip": ["xgboost"]}


def test_create_json_prints_only_the_cluster(fake: FakeClient, run: Any) -> None:
    result = run("create", "--name", "train-1", "--purpose", "training", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "READY"


def test_create_refuses_an_invalid_spec_before_calling_the_server(
    fake: FakeClient, run: Any
) -> None:
    result = run("create", "--purpose", "training", "--name", "Not_A_DNS_Name")
    assert result.exit_code == 2
    assert "invalid cluster spec" in result.output
    assert "name" in result.output
    assert fake.calls == []


def test_create_refuses_a_label_without_equals(fake: FakeClient, run: Any) -> None:
    result = run("create", "--name", "a", "--purpose", "training", "--label", "oops")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output
    assert fake.calls == []


def test_create_refuses_a_spec_file_that_is_not_a_mapping(
    fake: FakeClient, run: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cluster.json"
    path.write_text("[1, 2]")
    result = run("create", "--spec", str(path))
    assert result.exit_code == 2
    assert "mapping" in result.output


def test_create_that_fails_while_waiting_exits_1_with_one_line(
    fake: FakeClient, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = ClusterFailedError("c-1", state="FAILED", reason="no CPUs left", wanted="READY")

    def fail(*args: Any, **kwargs: Any) -> ClusterPublic:
        raise failure

    monkeypatch.setattr(fake, "wait_until", fail)
    result = run("create", "--name", "train-1", "--purpose", "training")
    assert result.exit_code == 1
    assert "no CPUs left" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------ list, get, events
def test_list_passes_filters_and_shows_a_table(fake: FakeClient, run: Any) -> None:
    fake.listed = [make_cluster(ClusterState.READY), make_cluster(id="c-ffffffffffff")]
    result = run("list", "--purpose", "training", "--state", "READY", "--label", "team=ml")
    assert result.exit_code == 0, result.output
    assert fake.calls == [
        (
            "list_clusters",
            {"purpose": Purpose.TRAINING, "state": ClusterState.READY, "labels": {"team": "ml"}},
        ),
    ]
    assert "c-0a1b2c3d4e5f" in result.stdout
    assert "c-ffffffffffff" in result.stdout
    assert JOB_API in result.stdout


def test_list_with_no_clusters(fake: FakeClient, run: Any) -> None:
    result = run("list")
    assert result.exit_code == 0
    assert "no clusters match" in result.stdout


def test_list_json(fake: FakeClient, run: Any) -> None:
    fake.listed = [make_cluster()]
    result = run("list", "--json")
    assert json.loads(result.stdout)["count"] == 1


def test_get_shows_addresses_and_nodes(fake: FakeClient, run: Any) -> None:
    fake.cluster = make_cluster(
        ClusterState.READY,
        labels={"team": "ml"},
        nodes=[
            NodePublic(
                node_id="head-node-1",
                role="head",
                alive=True,
                resources={"CPU": 2, "memory": 2 * 2**30},
            ),
            NodePublic(node_id="worker-node-1", role="worker", alive=False),
        ],
    )
    result = run("get", "c-0a1b2c3d4e5f")
    assert result.exit_code == 0, result.output
    assert fake.calls == [("get_cluster", {"cluster_id": "c-0a1b2c3d4e5f"})]
    for text in (JOB_API, "team=ml", "head-node-1", "worker-node-1", "CPU=2", "memory=2.0GiB"):
        assert text in result.stdout


def test_get_an_unknown_cluster_exits_1(fake: FakeClient, run: Any) -> None:
    fake.error = ClusterNotFoundError("c-nope")
    result = run("get", "c-nope")
    assert result.exit_code == 1
    assert "rayline clusters list" in result.stderr
    assert "Traceback" not in result.output


def test_events_show_reasons(fake: FakeClient, run: Any) -> None:
    fake.events = [
        ClusterEventPublic(
            from_state=None, to_state=ClusterState.PENDING, reason="requested", created_at=NOW
        ),
        ClusterEventPublic(
            from_state=ClusterState.PENDING,
            to_state=ClusterState.FAILED,
            reason="head [node] died",
            created_at=NOW,
        ),
    ]
    result = run("events", "c-1")
    assert result.exit_code == 0, result.output
    assert "requested" in result.stdout
    assert "head [node] died" in result.stdout  # not eaten as rich markup


# ------------------------------------------------------------ delete, wait
def test_delete_without_wait(fake: FakeClient, run: Any) -> None:
    fake.cluster = make_cluster(ClusterState.TERMINATING)
    result = run("delete", "c-1")
    assert result.exit_code == 0, result.output
    assert calls(fake) == ["delete_cluster"]
    assert "TERMINATING" in result.stdout


def test_delete_wait_waits_for_terminated(fake: FakeClient, run: Any) -> None:
    fake.cluster = make_cluster(ClusterState.TERMINATING)
    fake.waited = make_cluster(ClusterState.TERMINATED)
    result = run("delete", "c-1", "--wait", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert fake.calls[1] == (
        "wait_until",
        {"cluster_id": "c-1", "state": "TERMINATED", "timeout": 30},
    )
    assert "TERMINATED" in result.stdout


def test_delete_wait_on_an_ended_cluster_does_not_wait(fake: FakeClient, run: Any) -> None:
    fake.cluster = make_cluster(ClusterState.FAILED, reason="boom")
    result = run("delete", "c-1", "--wait")
    assert result.exit_code == 0, result.output
    assert calls(fake) == ["delete_cluster"]


def test_wait_for_a_state(fake: FakeClient, run: Any) -> None:
    result = run("wait", "c-1", "--state", "READY", "--timeout", "5")
    assert result.exit_code == 0, result.output
    assert fake.calls == [("wait_until", {"cluster_id": "c-1", "state": "READY", "timeout": 5})]
    assert "READY" in result.stdout
    assert "ray job submit" in result.stdout


def test_wait_timeout_exits_1(fake: FakeClient, run: Any) -> None:
    fake.error = WaitTimeoutError("c-1", wanted="READY", state="PROVISIONING", timeout=5)
    result = run("wait", "c-1", "--timeout", "5")
    assert result.exit_code == 1
    assert "still PROVISIONING" in result.stderr


def test_an_unreachable_manager_exits_1_with_the_hint(fake: FakeClient, run: Any) -> None:
    fake.error = ClusterManagerUnavailableError(
        "cannot reach the Cluster Manager at http://127.0.0.1:8765; start it with "
        "`rayline cluster-manager serve`"
    )
    result = run("list")
    assert result.exit_code == 1
    assert "rayline cluster-manager serve" in result.stderr
    assert "Traceback" not in result.output


def test_interrupting_a_wait_says_the_cluster_carries_on(
    fake: FakeClient, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> ClusterPublic:
        raise KeyboardInterrupt

    monkeypatch.setattr(fake, "wait_until", interrupted)
    result = run("wait", "c-1")
    assert result.exit_code == 130
    assert "rayline clusters delete c-1" in result.stderr
