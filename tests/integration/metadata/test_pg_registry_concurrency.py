"""Concurrent registry and workflow writes on Postgres: no gaps, no duplicates."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select

from rayline.metadata.db import session_scope
from rayline.metadata.models import ModelAlias, RegisteredModel, WorkflowRun
from rayline.metadata.registry import ModelRegistry
from rayline.metadata.workflows import start_run

pytestmark = pytest.mark.integration

THREADS = 8
PER_THREAD = 25
T = TypeVar("T")


def _run_together(work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in THREADS threads released at the same instant."""
    barrier = threading.Barrier(THREADS)

    def start(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(start, i) for i in range(THREADS)]
        return [f.result() for f in futures]


def test_concurrent_registration_is_gap_free(pg_engine: Engine) -> None:
    registry = ModelRegistry()
    main, side = f"main-{secrets.token_hex(4)}", f"side-{secrets.token_hex(4)}"

    def work(_: int) -> list[tuple[str, int]]:
        got = []
        for _round in range(PER_THREAD):
            for name in (main, side):  # the second model interleaved with the first
                version = registry.register_version(
                    pg_engine, name=name, artifact_uri=f"s3://models/{name}", sha256="0" * 64
                )
                got.append((name, version.version))
        return got

    results = [pair for thread in _run_together(work) for pair in thread]

    expected = list(range(1, THREADS * PER_THREAD + 1))
    for name in (main, side):
        assert sorted(v for n, v in results if n == name) == expected
        assert [v.version for v in registry.list_versions(pg_engine, name=name)] == expected
        with session_scope(pg_engine) as session:
            query = select(RegisteredModel.latest_version).where(RegisteredModel.name == name)
            assert session.scalars(query).one() == expected[-1]


def test_concurrent_set_alias_creates_one_alias(pg_engine: Engine) -> None:
    registry = ModelRegistry()
    name = f"alias-{secrets.token_hex(4)}"
    for _ in range(THREADS):
        registry.register_version(pg_engine, name=name, artifact_uri="s3://m", sha256="0" * 64)

    _run_together(
        lambda i: registry.set_alias(pg_engine, name=name, alias="champion", version=i + 1)
    )

    with session_scope(pg_engine) as session:
        count = select(func.count()).select_from(ModelAlias).where(ModelAlias.model_name == name)
        assert session.scalar(count) == 1
    assert 1 <= registry.resolve_alias(pg_engine, name=name, alias="champion").version <= THREADS


def test_concurrent_start_run_creates_one_run(pg_engine: Engine) -> None:
    run_id = f"manual__{secrets.token_hex(4)}"

    runs = _run_together(
        lambda _: start_run(pg_engine, dag_id="rayline_train_and_serve", external_run_id=run_id)
    )

    assert len({run.id for run in runs}) == 1
    with session_scope(pg_engine) as session:
        count = select(func.count()).where(WorkflowRun.external_run_id == run_id)
        assert session.scalar(count) == 1
