"""The deployer's steps and switches, with a fake runtime and fake service discovery."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rayline.config import Settings
from rayline.metadata import (
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    ModelNotFoundError,
    ModelRegistry,
    ModelVersionNotFoundError,
)
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.models import Cluster
from rayline.serving import records
from rayline.serving.deployer import Deployer
from rayline.serving.errors import DeploymentFailedError, DeploymentNotFoundError
from rayline.serving.health import check_deployments
from rayline.storage import ArtifactStore, publish_version
from tests.unit.serving.fakes import FakeManager, FakeRuntime
from tests.unit.serving.model_factory import publish_iris


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def runtime(events: list[str]) -> FakeRuntime:
    return FakeRuntime(events=events)


@pytest.fixture
def manager(events: list[str]) -> FakeManager:
    return FakeManager(events=events)


@pytest.fixture
def deployer(
    settings: Settings, engine: Engine, manager: FakeManager, runtime: FakeRuntime
) -> Deployer:
    return Deployer(
        settings=settings,
        engine=engine,
        manager=manager,  # type: ignore[arg-type]
        mode=DeploymentMode.DOCKER,
        runtimes={DeploymentMode.DOCKER: runtime},
    )


def test_deploy_fetches_starts_registers_and_records(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    tmp_path: Path,
) -> None:
    publish_iris(store, engine, tmp_path, name="iris")
    live = deployer.deploy("iris", cluster_id=None)
    assert live.status == DeploymentStatus.LIVE and live.model_version == 1
    assert live.endpoint_url and live.image == "fake:1"
    [service] = manager.live_endpoints("iris").data
    assert service.url == live.endpoint_url and service.deployment_id == live.id
    assert service.health == "unknown"


def test_new_version_switches_then_old_one_stops(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    runtime: FakeRuntime,
    events: list[str],
    tmp_path: Path,
) -> None:
    publish_iris(store, engine, tmp_path, name="iris", variant=0)
    first = deployer.deploy("iris:1")
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    second = deployer.deploy("iris")

    assert second.model_version == 2
    assert records.get_deployment(engine, first.id).status == DeploymentStatus.STOPPED
    # Register the new endpoint, withdraw the old one, only then stop the old server.
    assert events[-3:] == [f"register {second.id}", f"deregister {first.id}", f"stop {first.id}"]
    assert [s.deployment_id for s in manager.list_services("iris").data] == [second.id]


def serving_clusters(engine: Engine, *ids: str) -> None:
    with Session(engine) as session, session.begin():
        for cluster_id in ids:
            session.add(
                Cluster(
                    id=cluster_id, name=cluster_id, purpose=ClusterPurpose.SERVING,
                    state=ClusterState.READY, backend="fake",
                )
            )  # fmt: skip


def test_the_old_cluster_is_released_once_its_last_deployment_is_replaced(
    deployer: Deployer, store: ArtifactStore, engine: Engine, events: list[str], tmp_path: Path
) -> None:
    serving_clusters(engine, "old", "home")
    for variant in range(3):
        publish_iris(store, engine, tmp_path, name="iris", variant=variant)
    first = deployer.deploy("iris:1", cluster_id="old")
    deployer.deploy("iris:2", cluster_id="home")
    assert records.get_deployment(engine, first.id).status == DeploymentStatus.STOPPED
    assert events[-1] == "delete cluster old"  # after the old version stopped

    deployer.deploy("iris:3", cluster_id="home")  # replaced on its own cluster: kept
    assert [e for e in events if e.startswith("delete cluster")] == ["delete cluster old"]


def test_a_cluster_another_model_still_uses_is_kept(
    deployer: Deployer, store: ArtifactStore, engine: Engine, events: list[str], tmp_path: Path
) -> None:
    serving_clusters(engine, "shared", "home")
    publish_iris(store, engine, tmp_path, name="iris")
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    publish_iris(store, engine, tmp_path, name="wine")
    deployer.deploy("iris:1", cluster_id="shared")
    deployer.deploy("wine:1", cluster_id="shared")
    deployer.deploy("iris:2", cluster_id="home")
    assert not [e for e in events if e.startswith("delete cluster")]


def test_a_release_the_manager_refuses_does_not_fail_the_deploy(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    tmp_path: Path,
) -> None:
    serving_clusters(engine, "old", "home")
    publish_iris(store, engine, tmp_path, name="iris")
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    deployer.deploy("iris:1", cluster_id="old")
    manager.missing_clusters.add("old")
    lines: list[str] = []
    deployer.progress = lines.append
    assert deployer.deploy("iris:2", cluster_id="home").status == DeploymentStatus.LIVE
    assert any("not released" in line and "the manager reaps it" in line for line in lines)


def test_a_failing_start_leaves_the_old_version_serving(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    runtime: FakeRuntime,
    tmp_path: Path,
) -> None:
    publish_iris(store, engine, tmp_path, name="iris", variant=0)
    first = deployer.deploy("iris")
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    runtime.fail_start = True
    with pytest.raises(DeploymentFailedError, match="told to fail"):
        deployer.deploy("iris")
    _assert_failed_while_old_serves(engine, manager, first.id, version=2, error="told to fail")


def test_a_deploy_that_lost_its_lock_while_starting_never_goes_live(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kazoo.protocol.states import KazooState

    from rayline.coordination import locks

    publish_iris(store, engine, tmp_path, name="iris", variant=0)
    first = deployer.deploy("iris")
    publish_iris(store, engine, tmp_path, name="iris", variant=1)

    @contextlib.contextmanager
    def lost_lock(*_: object, **__: object) -> Iterator[locks.LockLease]:
        lease = locks.LockLease()
        lease.session_changed(KazooState.LOST)  # the session expired mid-deploy
        yield lease

    monkeypatch.setattr(locks, "held_lock", lost_lock)
    with pytest.raises(DeploymentFailedError, match="lost the deploy lock"):
        deployer.deploy("iris")
    _assert_failed_while_old_serves(engine, manager, first.id, version=2, error="lost the deploy")


def _assert_failed_while_old_serves(
    engine: Engine, manager: FakeManager, live_id: str, *, version: int, error: str
) -> None:
    """``version`` is FAILED with ``error``; ``live_id`` is still LIVE and registered."""
    [failed] = [
        d for d in records.list_deployments(engine, model="iris") if d.model_version == version
    ]
    assert failed.status == DeploymentStatus.FAILED and error in (failed.error or "")
    assert records.get_deployment(engine, live_id).status == DeploymentStatus.LIVE
    assert [s.deployment_id for s in manager.list_services("iris").data] == [live_id]


def test_a_version_that_cannot_be_loaded_is_refused_before_anything_starts(
    deployer: Deployer, store: ArtifactStore, engine: Engine, tmp_path: Path
) -> None:
    runtime, manager = deployer.runtime(DeploymentMode.DOCKER), deployer.manager
    assert isinstance(runtime, FakeRuntime) and isinstance(manager, FakeManager)
    first = deployer.deploy(publish_iris(store, engine, tmp_path, variant=0)[0].model_name)
    broken = publish_iris(store, engine, tmp_path, variant=1)[2].directory
    (broken / "model.pkl").write_bytes(b"this is not a pickle")
    ref = publish_version(store, "iris", broken)  # its checksums match the broken file
    ModelRegistry().register_version(
        engine, name="iris", artifact_uri=ref.uri, sha256=ref.manifest_sha256
    )

    with pytest.raises(DeploymentFailedError, match="cannot be loaded"):
        deployer.deploy("iris:3")
    assert runtime.started == [first.id]  # nothing of version 3 was started
    _assert_failed_while_old_serves(engine, manager, first.id, version=3, error="cannot be loaded")


def test_a_server_that_never_gets_healthy_is_stopped_and_failed(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    runtime: FakeRuntime,
    tmp_path: Path,
) -> None:
    publish_iris(store, engine, tmp_path, name="iris")
    runtime.never_healthy = True
    with pytest.raises(DeploymentFailedError, match="did not answer within"):
        deployer.deploy("iris")
    [row] = records.list_deployments(engine, model="iris")
    assert row.status == DeploymentStatus.FAILED
    assert "fake output" in (row.error or "")  # the server's output is kept
    assert runtime.stopped == [row.id] and manager.list_services("iris").data == []


def test_checksum_mismatch_refuses_before_starting_anything(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    runtime: FakeRuntime,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _, ref, _ = publish_iris(store, engine, tmp_path, name="iris")
    root = Path(settings.artifact_uri.removeprefix("file://"))
    (root / "iris" / ref.version_id / "model.pkl").write_bytes(b"tampered")
    with pytest.raises(
        DeploymentFailedError, match=r"refusing to deploy iris version 1.*integrity"
    ):
        deployer.deploy("iris")
    assert runtime.started == []
    [row] = records.list_deployments(engine, model="iris")
    assert row.status == DeploymentStatus.FAILED and row.endpoint_url is None


def test_unknown_models_and_versions_create_nothing(deployer: Deployer, engine: Engine) -> None:
    with pytest.raises(ModelNotFoundError, match="'nope' is not registered"):
        deployer.deploy("nope")
    ModelRegistry().register_version(
        engine, name="known", artifact_uri="file:///x/known/v1", sha256="0" * 64
    )
    with pytest.raises(ModelVersionNotFoundError, match="has no version 7"):
        deployer.deploy("known:7")
    assert records.list_deployments(engine) == []


def test_rollback_serves_the_previous_version_again(
    deployer: Deployer, store: ArtifactStore, engine: Engine, tmp_path: Path
) -> None:
    publish_iris(store, engine, tmp_path, name="iris", variant=0)
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    with pytest.raises(DeploymentFailedError, match="no live deployment"):
        deployer.rollback("iris")
    deployer.deploy("iris:1")
    with pytest.raises(DeploymentFailedError, match="never served in a version other than 1"):
        deployer.rollback("iris")
    deployer.deploy("iris:2")
    back = deployer.rollback("iris")
    assert back.model_version == 1 and back.status == DeploymentStatus.LIVE
    assert deployer.rollback("iris").model_version == 2  # and forth, like `cd -`


def test_on_live_hears_each_deploy_and_rollback_once_what_it_replaced_stopped(
    settings: Settings,
    engine: Engine,
    store: ArtifactStore,
    manager: FakeManager,
    runtime: FakeRuntime,
    events: list[str],
    tmp_path: Path,
) -> None:
    def on_live(row: Deployment) -> None:
        events.append(f"live {row.model_name}:{row.model_version} {row.status.value}")

    deployer = Deployer(
        settings=settings,
        engine=engine,
        manager=manager,  # type: ignore[arg-type]
        mode=DeploymentMode.DOCKER,
        runtimes={DeploymentMode.DOCKER: runtime},
        on_live=on_live,
    )
    publish_iris(store, engine, tmp_path, name="iris", variant=0)
    publish_iris(store, engine, tmp_path, name="iris", variant=1)
    first = deployer.deploy("iris:1")
    deployer.deploy("iris:2")
    assert events.index("live iris:2 LIVE") > events.index(f"stop {first.id}")
    deployer.rollback("iris")
    assert [e for e in events if e.startswith("live ")] == [
        "live iris:1 LIVE",
        "live iris:2 LIVE",
        "live iris:1 LIVE",
    ]


def test_delete_by_model_name_or_id(
    deployer: Deployer, store: ArtifactStore, engine: Engine, manager: FakeManager, tmp_path: Path
) -> None:
    publish_iris(store, engine, tmp_path, name="iris")
    live = deployer.deploy("iris")
    [stopped] = deployer.delete("iris")
    assert stopped.id == live.id and stopped.status == DeploymentStatus.STOPPED
    assert manager.list_services("iris").data == []
    assert deployer.delete(live.id) == []  # already stopped: nothing to do
    with pytest.raises(DeploymentNotFoundError, match="rayline deployments list"):
        deployer.delete("nothing-like-this")


def test_health_check_fails_dead_deployments_and_withdraws_them(
    deployer: Deployer,
    store: ArtifactStore,
    engine: Engine,
    manager: FakeManager,
    runtime: FakeRuntime,
    settings: Settings,
    tmp_path: Path,
) -> None:
    publish_iris(store, engine, tmp_path, name="iris")
    publish_iris(store, engine, tmp_path, name="other")
    doomed = deployer.deploy("iris")
    healthy = deployer.deploy("other")
    runtime.dead.add(doomed.id)

    failures = check_deployments(
        settings=settings,
        engine=engine,
        manager=manager,  # type: ignore[arg-type]
        runtimes={DeploymentMode.DOCKER: runtime},
    )

    assert [f.deployment_id for f in failures] == [doomed.id]
    assert records.get_deployment(engine, doomed.id).status == DeploymentStatus.FAILED
    assert "killed by the test" in (records.get_deployment(engine, doomed.id).error or "")
    assert manager.list_services("iris").data == []
    assert records.get_deployment(engine, healthy.id).status == DeploymentStatus.LIVE
