"""Training jobs end to end: Ray cluster from the Cluster Manager, S3 data, Postgres registry."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading

import pytest
from ray.util.state import list_actors

from rayline.metadata import ModelRegistry, start_run
from rayline.storage import open_store
from rayline.training.artifacts import load_model, load_registered_model
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import (
    classification_frame,
    regression_frame,
    to_csv,
)
from tests.integration.training.helpers import run_job, spec_for

pytestmark = pytest.mark.integration

CHECKPOINT_LINE = re.compile(r"xgboost: checkpoint at iteration (\d+)")
LAYOUT = {
    "model.json",
    "signature.json",
    "preprocessing.json",
    "metrics.json",
    "params.json",
    "spec.json",
    "lineage.json",
    "input_example.json",
    "manifest.json",
}


def test_xgboost_on_two_workers_from_s3_csv(training_env: TrainingEnv) -> None:
    env = training_env
    data = to_csv(classification_frame())
    uri = env.s3_put("data/xgb.csv", data)
    run = start_run(env.engine, dag_id="tests", external_run_id="xgb-1")
    spec = spec_for(
        "clf-xgb", uri, workers=2, hyperparameters={"num_boost_round": 30, "max_depth": 4}
    )

    outcome = run_job(env, spec, workflow_run_id=run.id)

    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None and result["version"] == 1
    assert result["metrics"]["validation_accuracy"] > 0.6
    row = ModelRegistry().get_version(env.engine, name="clf-xgb", version=1)
    assert row.artifact_uri == result["artifact_uri"]
    assert row.workflow_run_id == run.id
    assert row.dataset_uri == uri
    assert row.dataset_sha256 == hashlib.sha256(data).hexdigest()
    assert row.code_version and row.code_version.startswith("rayline 0.1.0")
    assert row.params["num_boost_round"] == 30 and row.params["workers"] == 2
    assert row.signature is not None
    assert row.signature["output"]["classes"] == ["cat", "dog", "eel"]
    assert [f["name"] for f in row.signature["inputs"]] == [f"f{i}" for i in range(8)]

    # The artifact reloads (checksums verified) and predicts what the job predicted.
    store = open_store(settings=env.settings)
    assert set(store.open_version("clf-xgb", result["version_id"]).metadata) >= {
        "dataset_sha256",
        "code_version",
    }
    files = {key.rsplit("/", 1)[1] for key in store.list_keys(f"clf-xgb/{result['version_id']}")}
    assert files == LAYOUT | {"model.ubj"}
    example = json.loads(store.get_bytes(f"clf-xgb/{result['version_id']}/input_example.json"))
    predictor = load_registered_model(env.engine, "clf-xgb", store=store)
    assert predictor.predict(example["rows"]) == example["predictions"]
    assert set(example["predictions"]) <= {"cat", "dog", "eel"}

    # The same spec again is a new version; the first one is untouched.
    again = run_job(env, spec)
    assert again.succeeded and again.result is not None and again.result["version"] == 2
    first = ModelRegistry().get_version(env.engine, name="clf-xgb", version=1)
    assert store.open_version(
        "clf-xgb", result["version_id"], expected_manifest_sha256=first.sha256
    )
    assert again.result["version_id"] != result["version_id"]


def test_sklearn_end_to_end_from_s3_csv(training_env: TrainingEnv) -> None:
    env = training_env
    uri = env.s3_put("data/reg.csv", to_csv(regression_frame()))
    spec = spec_for(
        "reg-sklearn",
        uri,
        target="y",
        task="regression",
        framework="sklearn",
        hyperparameters={"estimator": "random_forest", "n_estimators": 50},
    )

    outcome = run_job(env, spec)

    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None
    assert result["metrics"]["validation_r2"] > 0.5
    store = open_store(settings=env.settings)
    predictor = load_model(
        store,
        "reg-sklearn",
        result["version_id"],
        expected_manifest_sha256=result["manifest_sha256"],
    )
    example = json.loads(store.get_bytes(f"reg-sklearn/{result['version_id']}/input_example.json"))
    assert predictor.predict(example["rows"]) == pytest.approx(example["predictions"])
    assert predictor.signature.task == "regression"


def test_killed_worker_resumes_from_its_checkpoint(training_env: TrainingEnv) -> None:
    env = training_env
    uri = env.s3_put("data/big.csv", to_csv(classification_frame(rows=60_000, features=20)))
    spec = spec_for(
        "clf-resume",
        uri,
        workers=2,
        checkpoint_every=25,
        max_failures=2,
        hyperparameters={"num_boost_round": 400, "max_depth": 6},
    )
    killed: list[int] = []
    seen: list[int] = []
    at_kill: list[int] = []
    lock = threading.Lock()

    def watch(chunk: str) -> None:
        print(chunk, end="")
        seen.extend(int(n) for n in CHECKPOINT_LINE.findall(chunk))
        with lock:
            if not killed and seen and seen[-1] >= 50:
                at_kill.append(seen[-1])
                killed.append(_kill_one_training_worker(env))

    outcome = run_job(env, spec, on_output=watch)

    assert killed, "training ended before a worker could be killed; make it longer"
    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None
    resumed = result["resumed_from"]
    # It continued from a checkpoint taken before the kill, not from round zero. (Not
    # necessarily the very last one: a checkpoint counts once the controller has
    # registered it, which the kill can beat.)
    assert 0 < resumed <= at_kill[0] and resumed % 25 == 0 and resumed in seen, (resumed, seen)
    assert f"xgboost: resuming from checkpoint at iteration {resumed} of 400" in outcome.logs
    lineage = json.loads(
        open_store(settings=env.settings).get_bytes(
            f"clf-resume/{result['version_id']}/lineage.json"
        )
    )
    assert lineage["iterations"] == 400 and lineage["resumed_from"] == resumed


def _kill_one_training_worker(env: TrainingEnv) -> int:
    assert env.cluster.dashboard_url is not None
    workers = list_actors(
        address=env.cluster.dashboard_url,
        filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
    )
    pid = max(int(actor.pid) for actor in workers if actor.pid)  # any one will do
    os.kill(pid, signal.SIGKILL)  # the cluster runs on this host
    print(f"\n*** killed training worker pid {pid} ***\n")
    return pid


def test_torch_on_two_workers(training_env: TrainingEnv) -> None:
    pytest.importorskip("torch", reason="the torch extra is not installed")
    env = training_env
    uri = env.s3_put("data/torch.csv", to_csv(classification_frame(rows=1500)))
    spec = spec_for(
        "clf-torch",
        uri,
        framework="torch",
        workers=2,
        checkpoint_every=5,
        hyperparameters={"epochs": 15, "batch_size": 64, "hidden_sizes": [32, 16], "lr": 0.01},
    )

    outcome = run_job(env, spec)

    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None
    assert result["metrics"]["validation_accuracy"] > 0.6
    assert "torch: epochs 1..15 on 2 workers" in outcome.logs
    store = open_store(settings=env.settings)
    example = json.loads(store.get_bytes(f"clf-torch/{result['version_id']}/input_example.json"))
    predictor = load_registered_model(env.engine, "clf-torch", store=store)
    assert predictor.predict(example["rows"]) == example["predictions"]
