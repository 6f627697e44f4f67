"""CreateRayClusterOperator and DeleteRayClusterOperator over an in-memory Cluster Manager."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from rayline.clusters.schemas import ClusterCreate, ClusterState
from rayline.clusters.serving_homes import MODEL_LABEL
from rayline.orchestration import ids
from rayline.orchestration.operators.clusters import (
    CreateRayClusterOperator,
    DeleteRayClusterOperator,
)
from rayline.orchestration.params import DEFAULT_TRAINING
from rayline.orchestration.triggers.ray_cluster import RayClusterStateTrigger
from rayline.training.resources import check_capacity
from rayline.training.spec import load_spec
from tests.unit.orchestration.fakes import (
    DAG_ID,
    RUN_ID,
    FakeClusterManagerHook,
    FakeTI,
    context_for,
    make_cluster,
)

SPEC = {"purpose": "training", "head": {"cpus": 1}, "ttl_seconds": 600}
TRAINING = {**DEFAULT_TRAINING, "framework": "xgboost", "workers": 4, "cpus_per_worker": 2}


def _create(fake: FakeClusterManagerHook, **kwargs: object) -> CreateRayClusterOperator:
    op = CreateRayClusterOperator(task_id="create_cluster", spec=kwargs.pop("spec", SPEC), **kwargs)  # type: ignore[arg-type]
    op.__dict__["hook"] = fake
    return op


def _key(task_id: str = "create_cluster", try_number: int = 1) -> ids.TaskKey:
    return ids.TaskKey(dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, try_number=try_number)


def test_template_fields_are_declared() -> None:
    assert CreateRayClusterOperator.template_fields == ("spec", "training_spec", "name", "model")
    assert DeleteRayClusterOperator.template_fields == ("cluster_id",)


def test_create_waits_for_ready_and_returns_the_addresses() -> None:
    fake = FakeClusterManagerHook()
    ti = FakeTI("create_cluster")

    result = _create(fake).execute(context_for(ti))

    (spec,) = fake.specs
    assert spec.request_id == ids.cluster_request_id(_key())
    assert spec.labels == ids.run_labels(_key())
    assert result["cluster_id"] == "rc-1" and result["state"] == "READY"
    assert result["job_api_url"] == "http://127.0.0.1:8266"
    assert result["head_address"] and result["dashboard_url"]
    assert result["spec"]["head"]["cpus"] == 1 and "request_id" not in result["spec"]
    assert ti.xcom[("create_cluster", "cluster_id")] == "rc-1"


def test_same_try_executed_twice_gets_the_same_cluster() -> None:
    fake = FakeClusterManagerHook()
    first = _create(fake).execute(context_for(FakeTI("create_cluster")))
    again = _create(fake).execute(context_for(FakeTI("create_cluster")))
    assert first["cluster_id"] == again["cluster_id"]
    assert len(fake.specs) == 1


def test_a_retry_gets_a_new_cluster_and_deletes_the_earlier_tries_one() -> None:
    fake = FakeClusterManagerHook()
    fake.never_ready.add("rc-1")
    with pytest.raises(AirflowException, match="did not become READY"):
        _create(fake).execute(context_for(FakeTI("create_cluster")))
    # A failed cluster is deleted at once: a teardown does not run when its setup failed.
    assert fake.deleted == ["rc-1"]

    fake.add(
        make_cluster(
            "rc-0", labels=ids.run_labels(_key()), request_id=ids.cluster_request_id(_key())
        )
    )
    result = _create(fake).execute(context_for(FakeTI("create_cluster", try_number=2)))

    assert result["cluster_id"] == "rc-2"
    assert fake.specs[-1].request_id.endswith("-t2")
    assert "rc-0" in fake.deleted  # left alive by try 1, now cleaned up


def test_spec_may_be_json_and_is_validated() -> None:
    fake = FakeClusterManagerHook()
    result = _create(fake, spec='{"purpose": "serving"}').execute(
        context_for(FakeTI("create_cluster"))
    )
    assert result["purpose"] == "serving"
    # A dict rendered without native rendering is a Python literal: refused, with the fix.
    with pytest.raises(AirflowException, match="render_template_as_native_obj"):
        _create(fake, spec="{'purpose': 'serving', 'name': 'py-literal'}").execute(
            context_for(FakeTI("create_cluster", try_number=2))
        )

    with pytest.raises(AirflowException, match=r"worker_count: .*greater than or equal to 0"):
        _create(fake, spec={"purpose": "training", "worker_count": -1}).execute(
            context_for(FakeTI("create_cluster"))
        )
    with pytest.raises(AirflowException, match="expected a JSON object"):
        _create(fake, spec="{nope").execute(context_for(FakeTI("create_cluster")))


def test_deferrable_create_defers_to_the_cluster_trigger() -> None:
    fake = FakeClusterManagerHook()
    op = _create(fake, deferrable=True, poll_interval=2)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(FakeTI("create_cluster")))

    trigger = deferred.value.trigger
    assert isinstance(trigger, RayClusterStateTrigger)
    assert trigger.cluster_id == "rc-1" and trigger.poll_interval == 2
    assert deferred.value.method_name == "execute_complete"


def test_execute_complete_returns_the_ready_cluster() -> None:
    fake = FakeClusterManagerHook()
    ready = make_cluster("rc-7")
    event = {
        "status": "success",
        "message": "",
        "cluster_id": "rc-7",
        "cluster": ready.model_dump(mode="json"),
    }

    result = _create(fake).execute_complete(context_for(FakeTI("create_cluster")), event)

    assert result["cluster_id"] == "rc-7" and result["spec"]["purpose"] == "training"


@pytest.mark.parametrize("this_run", [True, False])
def test_execute_complete_error_deletes_the_cluster_this_run_made_and_raises(
    this_run: bool,
) -> None:
    fake = FakeClusterManagerHook()
    labels = ids.run_labels(_key()) if this_run else {ids.LABEL_RUN: "another-run"}
    fake.add(make_cluster("rc-7", state=ClusterState.PROVISIONING, labels=labels))
    event = {
        "status": "error",
        "message": "GCS never healthy",
        "cluster_id": "rc-7",
        "cluster": None,
    }

    with pytest.raises(AirflowException, match="GCS never healthy"):
        _create(fake).execute_complete(context_for(FakeTI("create_cluster")), event)
    # Another run's cluster is a model's serving cluster: its deployment lives on.
    assert fake.deleted == (["rc-7"] if this_run else [])


def _nodes(request: ClusterCreate) -> list[dict[str, float]]:
    """The nodes a cluster made from ``request`` has, as Ray reports them."""
    worker = {"CPU": request.worker.cpus, "GPU": request.worker.gpus}
    return [{"CPU": request.head.cpus, "GPU": request.head.gpus}] + [worker] * request.worker_count


def test_a_training_cluster_fits_the_workers_of_its_training_spec() -> None:
    fake = FakeClusterManagerHook()
    op = _create(fake, spec={"purpose": "training", "ttl_seconds": 600}, training_spec=TRAINING)

    result = op.execute(context_for(FakeTI("create_cluster")))

    (request,) = fake.specs
    assert request.worker_count == 4 and request.worker.cpus == 2
    check_capacity(load_spec(TRAINING), _nodes(request))  # Ray Train places all 4 workers
    # A replacement made from the XCom has the same shape.
    assert result["spec"]["worker_count"] == 4
    event = {"status": "success", "message": "", "cluster_id": "rc-1"}
    event["cluster"] = make_cluster("rc-1").model_dump(mode="json")
    again = op.execute_complete(context_for(FakeTI("create_cluster")), event)
    assert again["spec"] == result["spec"]


def test_a_training_cluster_spec_may_set_the_shape_itself() -> None:
    fake = FakeClusterManagerHook()
    spec = {"purpose": "training", "worker_count": 8, "worker": {"cpus": 1}}
    _create(fake, spec=spec, training_spec=TRAINING).execute(context_for(FakeTI("create_cluster")))
    assert fake.specs[0].worker_count == 8 and fake.specs[0].head.cpus == 1


def test_an_invalid_training_spec_fails_the_cluster_task_without_retries() -> None:
    fake = FakeClusterManagerHook()
    op = _create(fake, training_spec={**TRAINING, "framework": "sklearn"})  # 4 sklearn workers
    with pytest.raises(AirflowFailException, match="sklearn trains on one worker"):
        op.execute(context_for(FakeTI("create_cluster")))
    assert fake.specs == []


def _adopting(fake: FakeClusterManagerHook) -> CreateRayClusterOperator:
    return _create(fake, adopt_from="request_cluster")


def _ti_with_early(cluster_id: str, try_number: int = 1) -> FakeTI:
    ti = FakeTI("create_cluster", try_number=try_number)
    ti.xcom[("request_cluster", "cluster_id")] = cluster_id
    return ti


def test_adopt_from_takes_over_the_early_cluster_on_the_first_try() -> None:
    fake = FakeClusterManagerHook()
    fake.add(make_cluster("rc-early", state=ClusterState.PROVISIONING))

    result = _adopting(fake).execute(context_for(_ti_with_early("rc-early")))

    assert result["cluster_id"] == "rc-early" and result["state"] == "READY"
    assert fake.specs == []  # nothing new requested
    assert fake.deleted == []


@pytest.mark.parametrize("state", [ClusterState.FAILED, ClusterState.TERMINATING])
def test_adopt_from_requests_a_cluster_when_the_early_one_ended(state: ClusterState) -> None:
    fake = FakeClusterManagerHook()
    fake.add(make_cluster("rc-early", state=state))

    result = _adopting(fake).execute(context_for(_ti_with_early("rc-early")))

    assert result["cluster_id"] != "rc-early" and len(fake.specs) == 1


def test_adopt_from_requests_a_cluster_when_the_early_one_is_unknown() -> None:
    fake = FakeClusterManagerHook()
    result = _adopting(fake).execute(context_for(_ti_with_early("rc-vanished")))
    assert result["cluster_id"] == "rc-1" and len(fake.specs) == 1


def test_a_retry_of_an_adopting_task_deletes_the_early_cluster_and_requests_its_own() -> None:
    fake = FakeClusterManagerHook()
    fake.add(make_cluster("rc-early", labels=ids.run_labels(_key("request_cluster"))))

    result = _adopting(fake).execute(context_for(_ti_with_early("rc-early", try_number=2)))

    assert "rc-early" in fake.deleted
    assert result["cluster_id"] != "rc-early"
    assert fake.specs[-1].request_id.endswith("-t2")


def test_a_retry_of_an_adopting_task_leaves_a_model_cluster_another_run_made() -> None:
    fake = FakeClusterManagerHook()
    other_run = ids.TaskKey(
        dag_id=DAG_ID, run_id="earlier", task_id="request_cluster", try_number=1
    )
    fake.add(make_cluster("rc-home", purpose="serving", labels=ids.run_labels(other_run)))

    result = _adopting(fake).execute(context_for(_ti_with_early("rc-home", try_number=2)))

    assert fake.deleted == [] and result["cluster_id"] != "rc-home"


def test_a_model_labels_the_request_so_the_manager_can_answer_with_its_cluster() -> None:
    fake = FakeClusterManagerHook()
    _create(fake, spec={"purpose": "serving"}, model="iris").execute(
        context_for(FakeTI("create_cluster"))
    )
    (spec,) = fake.specs
    assert spec.labels == {**ids.run_labels(_key()), MODEL_LABEL: "iris"}


# ------------------------------------------------------------------ delete
def _delete(fake: FakeClusterManagerHook, **kwargs: object) -> DeleteRayClusterOperator:
    op = DeleteRayClusterOperator(task_id="delete_cluster", **kwargs)  # type: ignore[arg-type]
    op.__dict__["hook"] = fake
    return op


def test_delete_needs_something_to_delete() -> None:
    with pytest.raises(ValueError, match="cluster_id, created_by"):
        DeleteRayClusterOperator(task_id="delete_cluster")


def test_delete_by_creator_finds_every_try_and_replacement_of_this_run() -> None:
    fake = FakeClusterManagerHook()
    mine = ids.run_labels(_key())
    fake.add(make_cluster("rc-a", labels=mine))
    fake.add(make_cluster("rc-b", labels={**mine, "rayline-replaces": "rc-a"}))
    fake.add(make_cluster("rc-old", labels=mine, state=ClusterState.FAILED))
    other_run = ids.run_labels(
        ids.TaskKey(dag_id=DAG_ID, run_id="other", task_id="create_cluster", try_number=1)
    )
    fake.add(make_cluster("rc-other", labels=other_run))

    deleted = _delete(fake, created_by="create_cluster").execute(
        context_for(FakeTI("delete_cluster"))
    )

    assert sorted(deleted) == ["rc-a", "rc-b"]
    assert fake.clusters["rc-other"].state == ClusterState.READY


def test_delete_by_several_creators_finds_the_clusters_of_each() -> None:
    fake = FakeClusterManagerHook()
    fake.add(make_cluster("rc-early", labels=ids.run_labels(_key("request_serving"))))
    fake.add(make_cluster("rc-late", labels=ids.run_labels(_key("create_serving"))))
    fake.add(make_cluster("rc-train", labels=ids.run_labels(_key("create_training"))))

    deleted = _delete(fake, created_by=["request_serving", "create_serving"]).execute(
        context_for(FakeTI("delete_serving"))
    )

    assert sorted(deleted) == ["rc-early", "rc-late"]
    assert fake.clusters["rc-train"].state == ClusterState.READY


def test_delete_is_idempotent() -> None:
    fake = FakeClusterManagerHook()
    op = _delete(fake, cluster_id="rc-gone")
    assert op.execute(context_for(FakeTI("delete_cluster"))) == ["rc-gone"]
    assert op.execute(context_for(FakeTI("delete_cluster"))) == ["rc-gone"]


@pytest.mark.parametrize(
    ("verify_state", "kept"), [("success", True), ("failed", False), ("upstream_failed", False)]
)
def test_keep_if_succeeded_keeps_a_serving_cluster_only_when_it_served(
    verify_state: str, kept: bool
) -> None:
    fake = FakeClusterManagerHook()
    fake.add(make_cluster("rc-s", labels=ids.run_labels(_key("create_serving"))))
    ti = FakeTI("delete_serving", states={"verify_endpoint": verify_state})

    deleted = _delete(
        fake, created_by="create_serving", keep_if_succeeded=["verify_endpoint"]
    ).execute(context_for(ti))

    assert deleted == ([] if kept else ["rc-s"])
    assert (fake.clusters["rc-s"].state == ClusterState.READY) is kept
