"""Concurrent registration on one SQLite file: version numbers stay 1..N, no gaps.

Threads share one engine (and its pool); processes each open their own, as the
Cluster Manager, Airflow workers and Ray jobs would. A barrier releases every
worker at once so they really contend for the lock.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from sqlalchemy import Engine

from rayline.metadata.db import create_engine_for
from rayline.metadata.registry import ModelRegistry

WORKERS = 4
PER_WORKER = 15  # registrations of each of the two models, per worker

Registered = list[tuple[str, int]]


def register_many(engine: Engine, names: list[str]) -> Registered:
    """Register one version per entry of ``names``; return (name, version) pairs."""
    registry = ModelRegistry()
    return [
        (
            name,
            registry.register_version(
                engine, name=name, artifact_uri=f"file:///m/{name}", sha256="0" * 64
            ).version,
        )
        for name in names
    ]


def _interleaved() -> list[str]:
    return ["alpha" if i % 2 == 0 else "beta" for i in range(2 * PER_WORKER)]


def _assert_gap_free(engine: Engine, results: list[Registered]) -> None:
    registry = ModelRegistry()
    expected = list(range(1, WORKERS * PER_WORKER + 1))
    for name in ("alpha", "beta"):
        handed_out = sorted(v for result in results for n, v in result if n == name)
        stored = [v.version for v in registry.list_versions(engine, name=name)]
        assert handed_out == expected
        assert stored == expected


def test_threads_get_gap_free_versions(engine: Engine) -> None:
    barrier = threading.Barrier(WORKERS)

    def work() -> Registered:
        barrier.wait()
        return register_many(engine, _interleaved())

    with ThreadPoolExecutor(WORKERS) as pool:
        results = [f.result() for f in [pool.submit(work) for _ in range(WORKERS)]]

    _assert_gap_free(engine, results)


def _process_main(url: str, barrier: Barrier, out: Queue[Registered | str]) -> None:
    engine = create_engine_for(url)
    try:
        barrier.wait()
        out.put(register_many(engine, _interleaved()))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def test_processes_get_gap_free_versions(db_url: str, engine: Engine) -> None:
    # spawn, not fork: a forked child would inherit the parent's pooled connections.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    out: Queue[Registered | str] = context.Queue()
    processes = [
        context.Process(target=_process_main, args=(db_url, barrier, out)) for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    errors = [r for r in results if isinstance(r, str)]
    assert errors == []
    _assert_gap_free(engine, [r for r in results if not isinstance(r, str)])
    assert [p.exitcode for p in processes] == [0] * WORKERS
