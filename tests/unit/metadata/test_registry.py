"""ModelRegistry on SQLite: numbering, look-ups, aliases, not-found errors."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rayline.metadata.db import session_scope
from rayline.metadata.enums import ModelVersionStatus
from rayline.metadata.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
)
from rayline.metadata.models import RegisteredModel
from rayline.metadata.registry import ModelRegistry

registry = ModelRegistry()


def _register(engine: Engine, name: str = "iris") -> int:
    version = registry.register_version(
        engine, name=name, artifact_uri=f"s3://models/{name}", sha256="ab" * 32
    )
    return version.version


def test_versions_count_up_per_model(engine: Engine) -> None:
    assert [_register(engine) for _ in range(3)] == [1, 2, 3]
    assert _register(engine, name="wine") == 1
    assert _register(engine) == 4


def test_version_keeps_metrics_params_and_lineage(engine: Engine) -> None:
    registry.register_version(
        engine,
        name="iris",
        artifact_uri="s3://models/iris/1",
        sha256="cd" * 32,
        framework="xgboost",
        task="classification",
        metrics={"accuracy": 0.97},
        params={"max_depth": 3},
        signature={"inputs": [{"name": "x", "dtype": "float64"}]},
        dataset_uri="sklearn://iris",
        dataset_sha256="ef" * 32,
        code_version="0.1.0",
        mlflow_run_id="run-1",
    )

    found = registry.get_version(engine, name="iris", version=1)

    assert found.artifact_uri == "s3://models/iris/1"
    assert found.metrics == {"accuracy": 0.97}
    assert found.params == {"max_depth": 3}
    assert found.signature == {"inputs": [{"name": "x", "dtype": "float64"}]}
    assert (found.dataset_uri, found.code_version, found.mlflow_run_id) == (
        "sklearn://iris",
        "0.1.0",
        "run-1",
    )
    assert found.status is ModelVersionStatus.READY
    assert found.created_at.tzinfo is not None


def test_rolled_back_registration_leaves_no_gap(engine: Engine) -> None:
    _register(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        assert _register_in(session) == 2
        raise RuntimeError("training job died before commit")

    assert _register(engine) == 2
    with session_scope(engine) as session:
        assert session.query(RegisteredModel).filter_by(name="iris").one().latest_version == 2


def _register_in(session: Session) -> int:
    return registry.register_version(
        session,
        name="iris",
        artifact_uri="s3://models/iris",
        sha256="ab" * 32,
    ).version


def test_get_latest_skips_deleted_versions(engine: Engine) -> None:
    for _ in range(3):
        _register(engine)
    with session_scope(engine) as session:
        registry.get_version(session, name="iris", version=3).status = ModelVersionStatus.DELETED

    assert registry.get_version(engine, name="iris").version == 2
    assert registry.get_version(engine, name="iris", version=3).status is ModelVersionStatus.DELETED


def test_list_versions_oldest_first(engine: Engine) -> None:
    for _ in range(3):
        _register(engine)

    assert [v.version for v in registry.list_versions(engine, name="iris")] == [1, 2, 3]


def test_aliases_point_at_and_move_between_versions(engine: Engine) -> None:
    _register(engine)
    _register(engine)

    registry.set_alias(engine, name="iris", alias="champion", version=1)
    assert registry.resolve_alias(engine, name="iris", alias="champion").version == 1

    registry.set_alias(engine, name="iris", alias="champion", version=2)
    assert registry.resolve_alias(engine, name="iris", alias="champion").version == 2


def test_unknown_model_errors(engine: Engine) -> None:
    with pytest.raises(ModelNotFoundError, match="'nope' is not registered"):
        registry.get_version(engine, name="nope")
    with pytest.raises(ModelNotFoundError):
        registry.list_versions(engine, name="nope")
    with pytest.raises(ModelNotFoundError):
        registry.resolve_alias(engine, name="nope", alias="champion")
    with pytest.raises(ModelNotFoundError):
        registry.set_alias(engine, name="nope", alias="champion", version=1)


def test_unknown_version_and_alias_errors(engine: Engine) -> None:
    _register(engine)

    with pytest.raises(ModelVersionNotFoundError, match="no version 7") as excinfo:
        registry.get_version(engine, name="iris", version=7)
    assert isinstance(excinfo.value, LookupError)
    with pytest.raises(ModelVersionNotFoundError):
        registry.set_alias(engine, name="iris", alias="champion", version=7)
    with pytest.raises(AliasNotFoundError, match="no alias 'champion'"):
        registry.resolve_alias(engine, name="iris", alias="champion")


def test_the_mlflow_run_of_a_version_can_be_recorded_later(engine: Engine) -> None:
    _register(engine)
    _register(engine)
    registry.set_mlflow_run_id(engine, name="iris", version=2, run_id="run-2")
    assert registry.get_version(engine, name="iris", version=2).mlflow_run_id == "run-2"
    assert registry.get_version(engine, name="iris", version=1).mlflow_run_id is None
    with pytest.raises(ModelVersionNotFoundError):
        registry.set_mlflow_run_id(engine, name="iris", version=3, run_id="run-3")
