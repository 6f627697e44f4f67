"""Unit tests of `rayline workflow run`'s pieces: the run's conf and following a run."""

from __future__ import annotations

from typing import Any

from rayline.stack.workflow import build_conf, follow_run

_PARAMS = {
    "training": {"value": {"name": "iris"}, "description": "spec"},
    "serving": {
        "value": {"port": None, "spec": {}, "sample_request": {"instances": [[1, 2, 3, 4]]}},
    },
}


def test_a_training_spec_gets_the_serving_defaults_and_the_options() -> None:
    spec = {"name": "wine", "dataset": "sklearn:wine"}

    conf = build_conf(spec, _PARAMS, serving_spec={"num_replicas": 2}, port=9123)

    assert conf["training"] == spec
    assert conf["serving"] == {
        "port": 9123,
        "spec": {"num_replicas": 2},
        "sample_request": {"instances": [[1, 2, 3, 4]]},
    }
    assert _PARAMS["serving"]["value"]["port"] is None  # defaults are not mutated


def test_a_whole_conf_is_taken_as_is_with_the_serving_param_completed() -> None:
    whole = {
        "training": {"name": "iris"},
        "serving": {"sample_request": {"instances": [[0, 0, 0, 0]]}},
        "serving_cluster": {"purpose": "serving", "worker_count": 1},
    }

    conf = build_conf(whole, _PARAMS)

    assert conf["serving_cluster"] == {"purpose": "serving", "worker_count": 1}
    assert conf["serving"]["sample_request"] == {"instances": [[0, 0, 0, 0]]}
    assert conf["serving"]["port"] is None


class FakeRuns:
    def __init__(self, states: list[str], instances: list[dict[str, Any]]) -> None:
        self.states = states
        self.instances = instances

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return {"state": self.states.pop(0) if len(self.states) > 1 else self.states[0]}

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.instances


def test_following_reports_each_state_once_and_names_failed_tasks() -> None:
    fake = FakeRuns(
        ["queued", "running", "running", "failed"],
        [
            {"task_id": "train", "state": "failed", "try_number": 3},
            {"task_id": "delete_training_cluster", "state": "success", "try_number": 1},
            {"task_id": "deploy", "state": "upstream_failed", "try_number": 0},
        ],
    )
    seen: list[str] = []

    outcome = follow_run(fake, "d", "r", timeout=60, on_state=seen.append, interval=0)  # type: ignore[arg-type]

    assert seen == ["queued", "running", "failed"]
    assert outcome.state == "failed"
    assert outcome.failed_tasks == ["train (try 3, failed)", "deploy (try 0, upstream_failed)"]


def test_following_gives_up_after_the_timeout() -> None:
    outcome = follow_run(FakeRuns(["running"], []), "d", "r", timeout=0, interval=0)  # type: ignore[arg-type]

    assert outcome.state == "timeout"
