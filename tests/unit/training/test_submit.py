"""The submit side: entrypoint, runtime env, result markers (no cluster needed)."""

from __future__ import annotations

import shlex

from pydantic import SecretStr

from rayline.config import Settings
from rayline.jobs.train import _parser
from rayline.training.outcome import (
    ERROR_MARKER,
    RESULT_MARKER,
    error_line,
    find_marker,
    result_line,
)
from rayline.training.spec import load_spec
from rayline.training.submit import JobOutcome, job_env_vars, training_entrypoint

SPEC = load_spec(
    {"spec_version": 1, "name": "quoted", "dataset": "sklearn:iris", "target": "target",
     "task": "classification", "framework": "xgboost", "hyperparameters": {"note": "a b; $(x)"}}
)  # fmt: skip


def test_entrypoint_survives_the_shell() -> None:
    command = training_entrypoint(SPEC, run_name="run 1", workflow_run_id=7)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "rayline.jobs.train"]
    args = _parser().parse_args(argv[3:])
    assert load_spec(args.spec) == SPEC
    assert (args.run_name, args.workflow_run_id) == ("run 1", 7)


def test_env_vars_carry_the_stores(tmp_path: object) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://u:pw@127.0.0.1:5432/db",
        artifact_uri="s3://bucket/models",
        s3_endpoint_url="http://127.0.0.1:59000",
        s3_access_key_id=SecretStr("AKIA"),
        s3_secret_access_key=SecretStr("s3cr3t"),
    )
    env = job_env_vars(settings)
    assert env["RAYLINE_ARTIFACT_URI"] == "s3://bucket/models"
    assert env["RAYLINE_S3_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert env["RAYLINE_DATABASE_URL"].endswith("/db")
    assert all(isinstance(v, str) for v in env.values())
    # Ray Train's controller polls faster than its 2 s default (reports wait for a poll).
    assert 0 < float(env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"]) < 2


def test_markers() -> None:
    logs = "\n".join(
        ["noise", result_line({"version": 1}), "RAYLINE_RESULT {broken", error_line("E", "m")]
    )
    assert find_marker(logs, RESULT_MARKER) == {"version": 1}
    assert find_marker(logs, ERROR_MARKER) == {"error": "E", "message": "m"}
    assert find_marker("nothing", RESULT_MARKER) is None


def test_outcome_descriptions() -> None:
    failed = JobOutcome("j", "FAILED", error={"error": "EmptyDatasetError", "message": "no rows"})
    assert failed.describe_failure() == "EmptyDatasetError: no rows" and not failed.succeeded
    crashed = JobOutcome("j", "FAILED", logs="a\nSegfault\n\n")
    assert "last log line: Segfault" in crashed.describe_failure()
    assert JobOutcome("j", "SUCCEEDED", result={"version": 2}).succeeded
