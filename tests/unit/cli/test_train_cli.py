"""`rayline train` with a fake Cluster Manager client and a fake job: the cluster's lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from rayline.cli import train as cli
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterPublic,
    ClusterState,
    Purpose,
)
from rayline.jobs.client import JobApiError, JobOutcome
from rayline.jobs.output import ReportedError
from rayline.jobs.results import TrainResult
from rayline.training.resources import check_capacity
from rayline.training.spec import load_spec

NOW = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = (
    "spec_version: 1\nname: Iris\ndataset: sklearn:iris\ntarget: target\n"
    "task: classification\nframework: xgboost\nworkers: 2\ncpus_per_worker: 1.5\n"
)


def cluster(state: ClusterState) -> ClusterPublic:
    return ClusterPublic(
        id="rc-1", name="train-iris", purpose=Purpose.TRAINING, state=state, backend="local",
        worker_count=2, ttl_seconds=60, created_at=NOW, updated_at=NOW,
        job_api_url="http://127.0.0.1:8265" if state == ClusterState.READY else None,
    )  # fmt: skip


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.created: ClusterCreate | None = None

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def create_cluster(self, spec: ClusterCreate) -> ClusterPublic:
        self.calls.append("create")
        self.created = spec
        return cluster(ClusterState.PENDING)

    def wait_until_ready(self, cluster_id: str, *, timeout: float) -> ClusterPublic:
        self.calls.append("wait")
        return cluster(ClusterState.READY)

    def get_cluster(self, cluster_id: str) -> ClusterPublic:
        self.calls.append(f"get {cluster_id}")
        return cluster(ClusterState.READY)

    def cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        return ClusterCredentials(cluster_id=cluster_id, ray_auth_token="t")

    def delete_cluster(self, cluster_id: str) -> ClusterPublic:
        self.calls.append(f"delete {cluster_id}")
        return cluster(ClusterState.TERMINATING)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(cli, "ClusterManagerClient", lambda: client)
    monkeypatch.setattr(cli.JobClient, "submit", lambda self, request, **kw: "job-1")
    return client


def invoke(tmp_path: Path, *args: str) -> Any:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    app = typer.Typer()
    app.command()(cli.train)
    return CliRunner().invoke(app, [str(path), *args])


def outcome_of(monkeypatch: pytest.MonkeyPatch, outcome: JobOutcome[Any] | Exception) -> None:
    def follow(self: object, job: str, result_type: object, **kw: Any) -> JobOutcome[Any]:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(cli.JobClient, "follow", follow)


def trained(**fields: Any) -> TrainResult:
    base: dict[str, Any] = {
        "name": "Iris", "version": 3, "version_id": "v", "artifact_uri": "s3://b/Iris/v",
        "manifest_sha256": "m", "framework": "sklearn", "metrics": {"a": 0.5}, "params": {},
        "dataset_uri": "sklearn:iris", "dataset_sha256": "d", "code_version": "c",
        "run_name": "r",
    }  # fmt: skip
    return TrainResult.model_validate({**base, **fields})


def test_success_prints_version_and_deletes_the_cluster(
    tmp_path: Path, fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome_of(monkeypatch, JobOutcome("job-1", "SUCCEEDED", result=trained()))
    out = invoke(tmp_path)
    assert out.exit_code == 0, out.output
    assert "version 3" in out.output and "0.5" in out.output
    assert fake.calls == ["create", "wait", "delete rc-1"]
    assert fake.created is not None
    assert (fake.created.worker_count, fake.created.worker.cpus, fake.created.head.cpus) == (
        2,
        1.5,
        1,
    )
    assert fake.created.name == "train-iris"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (JobOutcome("job-1", "FAILED", error=ReportedError(error="MissingTargetError")), 2),
        (JobOutcome("job-1", "FAILED", error=ReportedError(error="TrainingFailedError")), 1),
        (JobApiError("job API gone"), 1),
    ],
)
def test_failure_still_deletes_the_cluster(
    tmp_path: Path,
    fake: FakeClient,
    monkeypatch: pytest.MonkeyPatch,
    outcome: JobOutcome[Any] | Exception,
    code: int,
) -> None:
    outcome_of(monkeypatch, outcome)
    out = invoke(tmp_path)
    assert out.exit_code == code, out.output
    assert fake.calls[-1] == "delete rc-1"


def test_given_cluster_is_used_and_kept(
    tmp_path: Path, fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome_of(monkeypatch, JobOutcome("job-1", "SUCCEEDED", result=trained(metrics={})))
    out = invoke(tmp_path, "--cluster", "rc-9")
    assert out.exit_code == 0, out.output
    assert fake.calls == ["get rc-9"]


def test_bad_spec_exits_2_before_any_cluster(tmp_path: Path, fake: FakeClient) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("xgboost", "lightgbm"))
    app = typer.Typer()
    app.command()(cli.train)
    out = CliRunner().invoke(app, [str(path)])
    assert out.exit_code == 2 and "lightgbm" in out.output
    assert fake.calls == []


def test_wrong_target_exits_2_before_any_cluster(tmp_path: Path, fake: FakeClient) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("target: target", "target: species"))
    app = typer.Typer()
    app.command()(cli.train)
    out = CliRunner().invoke(app, [str(path)])
    assert out.exit_code == 2, out.output
    assert "'species' is not in dataset sklearn:iris" in out.output
    assert fake.calls == []


def _nodes(request: ClusterCreate) -> list[dict[str, float]]:
    """The nodes a cluster made from ``request`` has, as Ray reports them."""
    worker = {"CPU": request.worker.cpus, "GPU": request.worker.gpus}
    return [{"CPU": request.head.cpus, "GPU": request.head.gpus}] + [worker] * request.worker_count


def test_cluster_request_for_gpus() -> None:
    spec = load_spec(yaml.safe_load(SPEC.replace("cpus_per_worker: 1.5", "gpus_per_worker: 0.5")))
    request = cli.cluster_request_for(spec, ttl_seconds=60)
    assert request.worker.gpus == 1
    check_capacity(spec, _nodes(request))


def test_cluster_request_for_four_workers_fits_them() -> None:
    spec = load_spec(yaml.safe_load(SPEC.replace("workers: 2", "workers: 4")))
    request = cli.cluster_request_for(spec, ttl_seconds=60)
    assert request.worker_count == 4 and request.worker.cpus == 1.5
    assert request.name == "train-iris" and request.ttl_seconds == 60
    check_capacity(spec, _nodes(request))  # Ray Train places all 4 workers


def test_cluster_request_for_one_worker_is_the_warm_pool_shape() -> None:
    from rayline.clusters.pools import match, parse_pool_setting

    one = SPEC.replace("workers: 2", "workers: 1").replace("cpus_per_worker: 1.5", "")
    request = cli.cluster_request_for(load_spec(yaml.safe_load(one)), ttl_seconds=60)
    assert (request.head.cpus, request.worker_count) == (2, 0)  # trains in the job's driver
    assert match(request, parse_pool_setting("training:1")) is not None
