"""Requests to and from the jobs' entrypoint arguments."""

from __future__ import annotations

import shlex

import pytest
from pydantic import ValidationError

from rayline.jobs.requests import DeployRequest, TrainRequest
from rayline.serving.errors import InvalidModelRefError
from rayline.serving.spec import ServingSpec
from rayline.training.errors import InvalidSpecError
from rayline.training.spec import load_spec

SPEC = load_spec(
    {"spec_version": 1, "name": "quoted", "dataset": "sklearn:iris", "target": "target",
     "task": "classification", "framework": "xgboost", "hyperparameters": {"note": "a b; $(x)"}}
)  # fmt: skip


def test_train_request_survives_the_shell() -> None:
    request = TrainRequest(spec=SPEC, run_name="run 1", workflow_run_id=7)
    argv = shlex.split(request.entrypoint())
    assert argv[:3] == ["python", "-m", "rayline.jobs.train"]
    assert TrainRequest.from_argv(argv[3:]) == request


def test_train_request_without_spec_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpecError, match="--spec"):
        TrainRequest.from_argv(["--run-name", "x"])


@pytest.mark.parametrize(
    "request_",
    [
        DeployRequest(model="iris"),
        DeployRequest(model="iris", version=3, port=8000, cluster_id="c-1", mode="ray"),
        DeployRequest(model="iris", alias="champion", labels={"team": "a b"}, workflow_run_id=4),
        DeployRequest(model="iris", spec=ServingSpec(num_replicas=2, max_batch_size=8)),
        DeployRequest(action="rollback", model="iris", port=9000),
        DeployRequest(action="delete", model="dep-123"),
    ],
)
def test_deploy_request_round_trips(request_: DeployRequest) -> None:
    argv = shlex.split(request_.entrypoint())
    assert argv[:3] == ["python", "-m", "rayline.jobs.deploy"]
    back = DeployRequest.from_argv(argv[3:])
    assert back == request_
    assert back.version is None or isinstance(back.version, int)


def test_deploy_request_keeps_the_version_typed() -> None:
    back = DeployRequest.from_argv(["--model", "iris:12"])
    assert (back.model, back.version, str(back.ref)) == ("iris", 12, "iris:12")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--model", "iris:zero"], InvalidModelRefError),
        (["--model", "iris", "--port", "70000"], ValidationError),
        (["--model", "iris", "--label", "nokey"], ValueError),
        (["--port", "80"], ValueError),
    ],
)
def test_bad_deploy_arguments_are_value_errors(argv: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        DeployRequest.from_argv(argv)
    assert issubclass(error, ValueError)


def test_a_none_version_is_not_text() -> None:
    with pytest.raises(ValidationError):
        DeployRequest(model="iris", version="None")  # type: ignore[arg-type]
