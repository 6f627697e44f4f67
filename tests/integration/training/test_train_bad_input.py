"""Bad input fails the job fast, with a message naming the problem, and no model version.

The jobs are independent and mostly wait on process start-up, so they are
submitted together up front (a few at a time) and each test checks its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from rayline.jobs.client import JobOutcome
from rayline.jobs.results import TrainResult
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import classification_frame, to_csv
from tests.integration.training.helpers import (
    assert_failed_without_version,
    run_job,
    run_raw_job,
    spec_for,
)

pytestmark = pytest.mark.integration

Outcomes = dict[str, JobOutcome[TrainResult]]

CONCURRENT_JOBS = 4


def _jobs(env: TrainingEnv) -> dict[str, Callable[[], JobOutcome[TrainResult]]]:
    """Model name -> a call that submits its bad job and follows it to the end."""
    good = env.s3_put("bad/good.csv", to_csv(classification_frame(rows=200)))
    empty = env.s3_put("bad/empty.csv", b"f0,f1,label\n")
    frame = classification_frame(rows=200)
    frame["colour"] = ["red", "green"] * 100
    strings = env.s3_put("bad/strings.csv", to_csv(frame))
    nowhere = env.settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    job = partial(run_job, env, on_output=None)  # interleaved logs would be unreadable
    return {
        "bad-framework": lambda: run_raw_job(
            env, json.dumps(spec_for("bad-framework", good, framework="lightgbm")), on_output=None
        ),
        "bad-target": lambda: job(spec_for("bad-target", good, target="species")),
        "bad-empty": lambda: job(spec_for("bad-empty", empty)),
        "bad-strings": lambda: job(spec_for("bad-strings", strings)),
        "bad-missing": lambda: job(
            spec_for("bad-missing", f"s3://{env.bucket}/bad/nothing-here.csv")
        ),
        # The job gets an S3 endpoint where nothing listens.
        "bad-unreachable": lambda: job(spec_for("bad-unreachable", good), settings=nowhere),
        "bad-workers": lambda: job(spec_for("bad-workers", good, workers=4)),
    }


@pytest.fixture(scope="module")
def outcomes(training_env: TrainingEnv) -> dict[str, JobOutcome[TrainResult]]:
    """Every bad job, run to its end."""
    jobs = _jobs(training_env)
    with ThreadPoolExecutor(CONCURRENT_JOBS) as pool:
        futures = {name: pool.submit(call) for name, call in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def test_unknown_framework(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    assert_failed_without_version(
        training_env,
        outcomes["bad-framework"],
        "bad-framework",
        "InvalidSpecError",
        "framework",
        "lightgbm",
    )


def test_missing_target_column(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    assert_failed_without_version(
        training_env,
        outcomes["bad-target"],
        "bad-target",
        "MissingTargetError",
        "'species'",
        "'label'",
    )


def test_empty_dataset(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    uri = f"s3://{training_env.bucket}/bad/empty.csv"
    assert_failed_without_version(
        training_env, outcomes["bad-empty"], "bad-empty", "EmptyDatasetError", "no rows", uri
    )


def test_non_numeric_features(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    assert_failed_without_version(
        training_env,
        outcomes["bad-strings"],
        "bad-strings",
        "NonNumericFeaturesError",
        "'colour'",
        "numeric",
    )


def test_dataset_that_does_not_exist(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    uri = f"s3://{training_env.bucket}/bad/nothing-here.csv"
    assert_failed_without_version(
        training_env, outcomes["bad-missing"], "bad-missing", "DatasetNotFoundError", uri
    )


def test_unreachable_dataset_storage(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    good = f"s3://{training_env.bucket}/bad/good.csv"
    assert_failed_without_version(
        training_env,
        outcomes["bad-unreachable"],
        "bad-unreachable",
        "DatasetUnreachableError",
        good,
        "127.0.0.1:9",
    )


def test_more_workers_than_the_cluster_has(training_env: TrainingEnv, outcomes: Outcomes) -> None:
    outcome = outcomes["bad-workers"]
    assert_failed_without_version(
        training_env,
        outcome,
        "bad-workers",
        "InsufficientResourcesError",
        "4 worker(s)",
        "only 3",
        "1 node(s)",
    )
    assert "TrainController" not in outcome.logs  # Ray Train never started
