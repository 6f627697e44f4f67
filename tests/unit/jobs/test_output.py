"""The one parser of a job's result and error lines."""

from __future__ import annotations

import pytest

from rayline.jobs.output import (
    AnyResult,
    ReportedError,
    error_line,
    failure_message,
    read_output,
    result_line,
)
from rayline.jobs.results import DeployResult, TrainResult

TRAINED = TrainResult(
    name="iris",
    version=3,
    version_id="v-1",
    artifact_uri="s3://b/iris/3",
    manifest_sha256="ab",
    framework="sklearn",
    metrics={"accuracy": 0.97},
    params={"n_estimators": 10},
    dataset_uri="sklearn:iris",
    dataset_sha256="cd",
    code_version="0.1",
    workflow_run_id=None,
    run_name="r",
    resumed_from=0,
)


def test_a_result_line_reads_back_typed() -> None:
    output = read_output(f"noise\n{result_line(TRAINED)}\n", TrainResult)
    assert output.result == TRAINED
    assert isinstance(output.result.version, int)
    assert output.error is None


@pytest.mark.parametrize(
    "prefix", ["(pid=1234) ", "(raylet) ", "(TrainWorker pid=9, ip=10.0.0.1) "]
)
def test_ray_prefixes_are_tolerated(prefix: str) -> None:
    logs = f"{prefix}{result_line(TRAINED)}\n{prefix}{error_line('E', 'm')}"
    output = read_output(logs, TrainResult)
    assert output.result == TRAINED
    assert output.error == ReportedError(error="E", message="m")


def test_missing_marker_is_none() -> None:
    output = read_output("training...\nRAYLINE_RESULTS are here\n", TrainResult)
    assert output.result is None and output.error is None


def test_the_last_valid_marker_wins() -> None:
    older = TRAINED.model_copy(update={"version": 2})
    logs = "\n".join([result_line(older), result_line(TRAINED), "RAYLINE_RESULT {broken"])
    assert read_output(logs, TrainResult).result == TRAINED


def test_a_result_of_the_wrong_shape_counts_as_missing() -> None:
    assert read_output('RAYLINE_RESULT {"version": "three"}', TrainResult).result is None


def test_error_marker() -> None:
    logs = f"x\n{error_line('MissingTargetError', 'no column label; columns are a, b')}\n"
    output = read_output(logs, DeployResult)
    assert output.result is None
    assert output.error is not None
    assert str(output.error) == "MissingTargetError: no column label; columns are a, b"


def test_any_result_keeps_every_field() -> None:
    output = read_output('(pid=1) RAYLINE_RESULT {"answer": 42, "nested": {"a": [1]}}', AnyResult)
    assert output.result is not None
    assert output.result.model_dump() == {"answer": 42, "nested": {"a": [1]}}


def test_failure_message_drops_rays_log_tail_and_quotes_the_job() -> None:
    message = (
        "Job entrypoint command failed with exit code 2, last available logs (truncated):\n..."
    )
    logs = f"(pid=5) {error_line('InvalidSpecError', 'bad name')}"
    assert failure_message(message, logs) == (
        "Job entrypoint command failed with exit code 2; the job said: InvalidSpecError: bad name"
    )
    assert failure_message("boom", None) == "boom"
