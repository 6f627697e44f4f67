"""Training jobs end to end: Ray cluster from the Cluster Manager, S3 data, Postgres registry.

scikit-learn end to end is in test_train_cli.py (through `rayline train`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from rayline.jobs.client import JobOutcome
from rayline.jobs.results import TrainResult
from rayline.metadata import ModelRegistry, start_run
from rayline.models import load_registered_model
from rayline.storage import open_store, open_version
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import classification_frame, to_csv
from tests.integration.training.helpers import list_actors, run_job, spec_for

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


@dataclass(frozen=True)
class FirstRun:
    """The first run of the shared xgboost spec."""

    spec: dict[str, Any]
    data: bytes
    uri: str
    workflow_run_id: int
    outcome: JobOutcome[TrainResult]


@pytest.fixture(scope="module")
def xgb_first_run(training_env: TrainingEnv) -> FirstRun:
    """One xgboost spec on 2 workers, long enough to kill a worker mid-run when re-run.

    Each Ray Train run costs ~30 s of process start-up on a 2-core host, so the
    same spec serves the plain run and the re-run with a killed worker.
    """
    env = training_env
    data = to_csv(classification_frame(rows=40_000, features=20))
    uri = env.s3_put("data/xgb.csv", data)
    run = start_run(env.engine, dag_id="tests", external_run_id="xgb-1")
    spec = spec_for(
        "clf-xgb",
        uri,
        workers=2,
        checkpoint_every=25,
        max_failures=2,
        hyperparameters={"num_boost_round": 400, "max_depth": 6},
    )
    outcome = run_job(env, spec, workflow_run_id=run.id)
    return FirstRun(spec=spec, data=data, uri=uri, workflow_run_id=run.id, outcome=outcome)


def test_xgboost_on_two_workers_from_s3_csv(
    training_env: TrainingEnv, xgb_first_run: FirstRun
) -> None:
    env, outcome, uri = training_env, xgb_first_run.outcome, xgb_first_run.uri
    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None and result.version == 1
    assert result.resumed_from == 0
    assert "xgboost: training 400 rounds on 2 workers" in outcome.logs
    assert result.metrics["validation_accuracy"] > 0.6
    row = ModelRegistry().get_version(env.engine, name="clf-xgb", version=1)
    assert row.artifact_uri == result.artifact_uri
    assert row.workflow_run_id == xgb_first_run.workflow_run_id
    assert row.dataset_uri == uri
    assert row.dataset_sha256 == hashlib.sha256(xgb_first_run.data).hexdigest()
    assert row.code_version and row.code_version.startswith("rayline 0.1.0")
    assert row.params["num_boost_round"] == 400 and row.params["workers"] == 2
    assert row.signature is not None
    assert row.signature["output"]["classes"] == ["cat", "dog", "eel"]
    assert [f["name"] for f in row.signature["inputs"]] == [f"f{i}" for i in range(20)]

    # The artifact reloads (checksums verified) and predicts what the job predicted.
    store = open_store(settings=env.settings)
    assert set(open_version(store, "clf-xgb", result.version_id).metadata) >= {
        "dataset_sha256",
        "code_version",
    }
    files = {key.rsplit("/", 1)[1] for key in store.list_keys(f"clf-xgb/{result.version_id}")}
    assert files == LAYOUT | {"model.ubj"}
    example = json.loads(store.get_bytes(f"clf-xgb/{result.version_id}/input_example.json"))
    assert len(example["rows"]) == len(example["predictions"]) == 5
    predictor = load_registered_model(env.engine, "clf-xgb", version=1, store=store)
    assert predictor.predict(example["rows"]) == example["predictions"]
    assert set(example["predictions"]) <= {"cat", "dog", "eel"}
    # The run's checkpoints were discarded once the version was published.
    assert store.list_keys(f"_train/{result.run_name}") == []


def test_rerun_with_a_killed_worker_resumes_and_is_a_new_version(
    training_env: TrainingEnv, xgb_first_run: FirstRun
) -> None:
    env = training_env
    first = xgb_first_run.outcome.result
    assert first is not None, xgb_first_run.outcome.describe_failure()
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

    # The same spec again, with a worker killed mid-run.
    outcome = run_job(env, xgb_first_run.spec, on_output=watch)

    assert killed, "training ended before a worker could be killed; make it longer"
    assert outcome.succeeded, outcome.describe_failure()
    result = outcome.result
    assert result is not None
    resumed = result.resumed_from
    # It continued from a checkpoint the run had reported, not from round zero and not
    # after the end. (Not necessarily the one the log showed at the kill: the log
    # stream lags the workers, and a checkpoint counts once the controller registered it.)
    assert 0 < resumed < 400 and resumed % 25 == 0 and resumed in seen, (resumed, at_kill, seen)
    assert f"xgboost: resuming from checkpoint at iteration {resumed} of 400" in outcome.logs
    store = open_store(settings=env.settings)
    lineage = json.loads(store.get_bytes(f"clf-xgb/{result.version_id}/lineage.json"))
    assert lineage["iterations"] == 400 and lineage["resumed_from"] == resumed

    # A new version; the first one is untouched (its registered manifest still verifies).
    assert result.version == 2 and result.version_id != first.version_id
    row = ModelRegistry().get_version(env.engine, name="clf-xgb", version=1)
    assert open_version(store, "clf-xgb", first.version_id, expected_manifest_sha256=row.sha256)
    example = json.loads(store.get_bytes(f"clf-xgb/{result.version_id}/input_example.json"))
    predictor = load_registered_model(env.engine, "clf-xgb", store=store)  # the latest: 2
    assert predictor.version_id == result.version_id
    assert predictor.predict(example["rows"]) == example["predictions"]


def _kill_one_training_worker(env: TrainingEnv) -> int:
    assert env.cluster.dashboard_url is not None
    workers = list_actors(env, class_name="RayTrainWorker", state="ALIVE")
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
    assert result.metrics["validation_accuracy"] > 0.6
    assert "torch: epochs 1..15 on 2 workers" in outcome.logs
    store = open_store(settings=env.settings)
    example = json.loads(store.get_bytes(f"clf-torch/{result.version_id}/input_example.json"))
    predictor = load_registered_model(env.engine, "clf-torch", store=store)
    assert predictor.predict(example["rows"]) == example["predictions"]
