"""A training job addresses its own cluster while another Ray cluster runs on the host."""

from __future__ import annotations

import pytest

from rayline.clusters.schemas import ClusterCreate, Purpose, ResourceSpec
from tests.integration.training.conftest import READY_TIMEOUT, TrainingEnv
from tests.integration.training.data import classification_frame, to_csv
from tests.integration.training.helpers import run_job, spec_for

pytestmark = pytest.mark.integration

MULTIPLE = "Found multiple active Ray instances"


def test_a_job_beside_a_second_cluster_finds_its_own(training_env: TrainingEnv) -> None:
    env = training_env
    other = env.client.create_cluster(
        ClusterCreate(
            name="second-cluster",
            purpose=Purpose.TRAINING,
            head=ResourceSpec(cpus=1),
            worker_count=0,
            ttl_seconds=900,
        )
    )
    try:
        env.client.wait_until_ready(other.id, timeout=READY_TIMEOUT)
        uri = env.s3_put("data/own-cluster.csv", to_csv(classification_frame(rows=400)))
        # Two workers: Ray Train's controller and its placement-group cleaner run.
        spec = spec_for("own-cluster", uri, workers=2, hyperparameters={"num_boost_round": 10})

        outcome = run_job(env, spec)

        assert outcome.succeeded, outcome.describe_failure()
        assert MULTIPLE not in outcome.logs
    finally:
        env.client.delete_cluster(other.id)
