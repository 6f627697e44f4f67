"""Bad input fails the job fast, with a message naming the problem, and no model version."""

from __future__ import annotations

import json

import pytest

from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import classification_frame, to_csv
from tests.integration.training.helpers import (
    assert_failed_without_version,
    run_job,
    run_raw_job,
    spec_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def good_csv(training_env: TrainingEnv) -> str:
    return training_env.s3_put("bad/good.csv", to_csv(classification_frame(rows=200)))


def test_unknown_framework(training_env: TrainingEnv, good_csv: str) -> None:
    text = json.dumps(spec_for("bad-framework", good_csv, framework="lightgbm"))
    outcome = run_raw_job(training_env, text)
    assert_failed_without_version(
        training_env, outcome, "bad-framework", "InvalidSpecError", "framework", "lightgbm"
    )


def test_missing_target_column(training_env: TrainingEnv, good_csv: str) -> None:
    outcome = run_job(training_env, spec_for("bad-target", good_csv, target="species"))
    assert_failed_without_version(
        training_env, outcome, "bad-target", "MissingTargetError", "'species'", "'label'"
    )


def test_empty_dataset(training_env: TrainingEnv) -> None:
    uri = training_env.s3_put("bad/empty.csv", b"f0,f1,label\n")
    outcome = run_job(training_env, spec_for("bad-empty", uri))
    assert_failed_without_version(
        training_env, outcome, "bad-empty", "EmptyDatasetError", "no rows", uri
    )


def test_non_numeric_features(training_env: TrainingEnv) -> None:
    frame = classification_frame(rows=200)
    frame["colour"] = ["red", "green"] * 100
    uri = training_env.s3_put("bad/strings.csv", to_csv(frame))
    outcome = run_job(training_env, spec_for("bad-strings", uri))
    assert_failed_without_version(
        training_env, outcome, "bad-strings", "NonNumericFeaturesError", "'colour'", "numeric"
    )


def test_dataset_that_does_not_exist(training_env: TrainingEnv) -> None:
    uri = f"s3://{training_env.bucket}/bad/nothing-here.csv"
    outcome = run_job(training_env, spec_for("bad-missing", uri))
    assert_failed_without_version(training_env, outcome, "bad-missing", "DatasetNotFoundError", uri)


def test_unreachable_dataset_storage(training_env: TrainingEnv, good_csv: str) -> None:
    # The job gets an S3 endpoint where nothing listens.
    settings = training_env.settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    outcome = run_job(training_env, spec_for("bad-unreachable", good_csv), settings=settings)
    assert_failed_without_version(
        training_env, outcome, "bad-unreachable", "DatasetUnreachableError", good_csv
    )


def test_more_workers_than_the_cluster_has(training_env: TrainingEnv, good_csv: str) -> None:
    outcome = run_job(training_env, spec_for("bad-workers", good_csv, workers=4))
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
