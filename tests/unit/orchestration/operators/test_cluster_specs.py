"""Cluster requests built from operator arguments."""

from __future__ import annotations

from rayline.orchestration import ids
from rayline.orchestration.operators.cluster_specs import build_cluster_spec, with_training_shape
from rayline.orchestration.params import DEFAULT_TRAINING
from tests.unit.orchestration.fakes import DAG_ID, RUN_ID

SPEC = {"purpose": "training", "head": {"cpus": 1}, "ttl_seconds": 600}
TRAINING = DEFAULT_TRAINING


def _key(task_id: str) -> ids.TaskKey:
    return ids.TaskKey(dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, try_number=1)


def test_build_cluster_spec_lets_given_labels_win() -> None:
    spec = build_cluster_spec(SPEC, key=_key("train"), labels={ids.LABEL_TASK: "create_cluster"})
    assert spec.labels[ids.LABEL_TASK] == "create_cluster"
    assert spec.request_id == ids.cluster_request_id(_key("train"))


def test_one_worker_trains_on_the_head_alone() -> None:
    fields = with_training_shape('{"purpose": "training", "ttl_seconds": 60}', TRAINING)
    assert fields == {
        "purpose": "training",
        "ttl_seconds": 60,
        "head": {"cpus": 2.0},  # the driver's CPU and the worker's
        "worker_count": 0,
    }
    assert with_training_shape({"head": {"cpus": 4}}, TRAINING)["head"] == {"cpus": 4}
