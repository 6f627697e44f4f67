"""Pool shapes: reading `RAYLINE_POOL`, and which requests match which shape."""

from __future__ import annotations

from typing import Any

import pytest

from rayline.clusters.pools import PoolSettingError, PoolShape, match, parse_pool_setting
from rayline.clusters.schemas import ClusterCreate
from rayline.config import Settings


def _request(**fields: Any) -> ClusterCreate:
    body: dict[str, Any] = {"name": "r", "purpose": "training", "head": {"cpus": 2}}
    return ClusterCreate.model_validate({**body, **fields})


def test_short_form_gives_each_purpose_its_default_shape() -> None:
    training, serving = parse_pool_setting("training:1, serving:2")
    assert (training.name, training.purpose, training.size) == ("training", "training", 1)
    assert (serving.name, serving.size, serving.head.cpus, serving.worker_count) == (
        "serving",
        2,
        2,
        0,
    )


def test_the_environment_variable_and_a_file_list_both_work(monkeypatch: Any) -> None:
    monkeypatch.setenv("RAYLINE_POOL", "training:1")
    assert [s.name for s in parse_pool_setting(Settings().pool)] == ["training"]
    shapes = parse_pool_setting(
        [{"name": "big", "purpose": "training", "worker_count": 2, "worker": {"cpus": 1}}]
    )
    assert (shapes[0].name, shapes[0].worker_count, shapes[0].size) == ("big", 2, 1)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("training", "PURPOSE:SIZE"),
        ("gpu:1", "PURPOSE:SIZE"),
        ([{"purpose": "training", "size": -1}], "size"),
        ([{"purpose": "training", "head": {"cpu": 1}}], "head.cpu"),
        ("training:1,training:1", "twice"),
    ],
)
def test_a_bad_setting_names_the_entry_and_the_fix(value: Any, named: str) -> None:
    with pytest.raises(PoolSettingError, match=named.replace(".", r"\.")):
        parse_pool_setting(value)


def test_an_empty_setting_means_no_pools() -> None:
    assert parse_pool_setting("") == []


def test_a_request_matches_on_purpose_resources_workers_and_runtime_env_only() -> None:
    (shape,) = parse_pool_setting("training:1")
    per_use = {"labels": {"team": "x"}, "ttl_seconds": 60, "request_id": "a", "name": "other"}
    assert shape.matches(_request(**per_use))
    assert shape.matches(_request(worker={"cpus": 7}))  # no workers: worker size is moot
    assert not shape.matches(_request(purpose="serving"))
    assert not shape.matches(_request(head={"cpus": 1}))
    assert not shape.matches(_request(worker_count=1))
    assert not shape.matches(_request(runtime_env={"env_vars": {"A": "1"}}))


def test_workers_must_match_when_the_shape_has_workers() -> None:
    shape = PoolShape(name="w", purpose="training", worker_count=1, worker={"cpus": 1})
    assert shape.matches(_request(head={"cpus": 1}, worker_count=1, worker={"cpus": 1}))
    assert not shape.matches(_request(head={"cpus": 1}, worker_count=1, worker={"cpus": 2}))


def test_match_skips_pools_of_size_zero_and_takes_the_first_fit() -> None:
    shapes = parse_pool_setting("training:0,serving:1")
    assert match(_request(), shapes) is None
    serving = match(_request(purpose="serving"), shapes)
    assert serving is not None and serving.name == "serving"


def test_the_default_shapes_are_what_the_workflow_asks_for() -> None:
    # The DAG's default cluster requests (head with 2 CPUs, no workers) must match;
    # the training cluster's shape comes from the default training spec.
    from rayline.orchestration.operators.cluster_specs import with_training_shape
    from rayline.orchestration.params import dag_params

    params = dag_params()
    shapes = parse_pool_setting("training:1,serving:1")
    requests = {
        "training_cluster": with_training_shape(
            params["training_cluster"].value, params["training"].value
        ),
        "serving_cluster": params["serving_cluster"].value,
    }
    for key, fields in requests.items():
        request = ClusterCreate.model_validate({"name": "x", **fields})
        assert match(request, shapes) is not None, key
