"""The three ways `benchmarks/workflow.py` runs train -> serve, each a context manager.

- :class:`Baseline`: the hand-written Ray script of ``benchmarks/ray_baseline.py``.
- :class:`Embedded`: the `rayline_train_and_serve` DAG through ``dag.test()`` on the
  embedded defaults, in a fresh ``RAYLINE_HOME`` with its own Cluster Manager.
- :class:`FullStack`: ``rayline stack up`` (Airflow's scheduler on Postgres, Docker
  serving), triggered through Airflow's REST API.

Each ``run()`` returns a :class:`RunFigures`: trigger -> first answered prediction and
the per-step split; for Rayline the split has every step's wall time and the gaps
between steps (Airflow's own time: scheduling, trigger hand-back, task start-up).
``wait_warm()`` waits until the manager's pools are full, so a run measures a warm
manager, as a user sees it once the platform has been up a minute.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ray_baseline import STEPS, run_once

from rayline.cli.demo import DEMO_TRAINING
from rayline.cli.down import down
from rayline.clusters import daemon
from rayline.clusters.client import ClusterManagerClient
from rayline.config import get_settings
from rayline.metadata.migrate import upgrade
from rayline.metadata.models import WorkflowStep
from rayline.orchestration.embedded_workflow import prepare_airflow, run_train_and_serve

__all__ = ["Baseline", "Embedded", "FullStack", "Mode", "RunFigures"]

GAPS = "gaps between steps"


@dataclass
class RunFigures:
    """One run: trigger -> first answered prediction, and seconds per step."""

    total: float
    steps: dict[str, float] = field(default_factory=dict)


class Mode:
    """A way of running the workflow; entered once, run several times."""

    name = ""

    def __enter__(self) -> Mode:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def wait_warm(self, timeout: float) -> float:
        """Wait until the platform is warm; the seconds waited."""
        return 0.0

    def run(self) -> RunFigures:
        """One train -> serve run."""
        raise NotImplementedError


class Baseline(Mode):
    """The hand-written Ray baseline (``ray start``, ``ray job submit``, ``serve run``)."""

    name = "ray baseline"

    def __enter__(self) -> Baseline:
        self._workdir = Path(tempfile.mkdtemp(prefix="rayline-baseline-"))
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)

    def run(self) -> RunFigures:
        times = run_once(self._workdir)
        return RunFigures(total=times["total"], steps={s: times[s] for s in STEPS})


def split(triggered: datetime, steps: list[WorkflowStep], last: str) -> RunFigures:
    """Trigger -> end of ``last``, each step's wall time and the gaps between steps."""
    done = [s for s in steps if s.started_at is not None and s.finished_at is not None]
    done.sort(key=lambda s: (s.started_at, s.id))
    end = max(s.finished_at for s in done if s.name == last and s.finished_at)
    figures = RunFigures(total=(end - triggered).total_seconds())
    busy_until = triggered
    gaps = 0.0
    for step in done:
        assert step.started_at is not None and step.finished_at is not None
        wall = (step.finished_at - step.started_at).total_seconds()
        figures.steps[step.name] = figures.steps.get(step.name, 0.0) + wall
        # Steps may overlap (a teardown beside serving); only idle time counts as a gap.
        gaps += max(0.0, (step.started_at - busy_until).total_seconds())
        busy_until = max(busy_until, step.finished_at)
    figures.steps[GAPS] = gaps
    return figures


def pool_filling(client: ClusterManagerClient) -> bool | None:
    """True while the pools are not full yet; None when the manager has no pools.

    A cluster keeps its ``pool`` after a request adopted it (the audit trail), so
    only never-adopted ones count: full means at least one is warm (POOLED) and
    none is still starting (PENDING or PROVISIONING).
    """
    clusters = client.list_clusters(limit=500).data
    spares = [c for c in clusters if c.pool and c.adopted_at is None]
    if not any(c.pool for c in clusters):
        return None
    warm = [c for c in spares if c.state == "POOLED"]
    starting = [c for c in spares if c.state in ("PENDING", "PROVISIONING")]
    return not warm or bool(starting)


def wait_for_pools(client: ClusterManagerClient, timeout: float) -> float:
    """Wait until no pooled cluster is starting; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not pool_filling(client):
            break
        time.sleep(1)
    return time.monotonic() - started


class Embedded(Mode):
    """``dag.test()`` in this process on the embedded defaults and its own manager."""

    name = "rayline embedded"

    def __init__(self, keep_home: bool = False) -> None:
        self._keep_home = keep_home

    def __enter__(self) -> Embedded:
        self._home = Path(tempfile.mkdtemp(prefix="rl-bench-wf-"))
        os.environ["RAYLINE_HOME"] = str(self._home)
        os.environ.setdefault("RAYLINE_SERVING_MODE", "ray")
        os.environ.setdefault("RAYLINE_API_PORT", "8791")
        get_settings.cache_clear()
        self._settings = get_settings()
        upgrade(self._settings.database_url)
        daemon.ensure_running(self._settings)
        self._dag = prepare_airflow(self._home / "airflow")
        return self

    def __exit__(self, *exc: Any) -> None:
        down()
        if not self._keep_home:
            shutil.rmtree(self._home, ignore_errors=True)

    def wait_warm(self, timeout: float) -> float:
        with ClusterManagerClient() as client:
            return wait_for_pools(client, timeout)

    def run(self) -> RunFigures:
        conf = {"training": DEMO_TRAINING}
        result = run_train_and_serve(self._settings, self._dag, run_conf=conf)
        if not result.succeeded:
            error = result.run.error if result.run is not None else result.state
            raise RuntimeError(f"embedded run failed: {error}")
        return split(result.triggered_at, result.steps(), "verify_endpoint")


class FullStack(Mode):
    """The full stack (`rayline stack up`), triggered through Airflow's REST API."""

    name = "rayline full stack"

    def __enter__(self) -> FullStack:
        from rayline.metadata.db import create_engine_for
        from rayline.stack.config import StackConfig
        from rayline.stack.stack import DAG_ID, Stack
        from rayline.stack.workflow import build_conf

        self._stack = Stack(StackConfig.from_env(None))
        self._stack.up()
        self._client = self._stack.airflow_client()
        self._client.__enter__()
        dag = self._client.get_dag(DAG_ID)
        if dag is None:
            raise RuntimeError(f"the stack's Airflow has not parsed {DAG_ID}")
        self._conf = build_conf(DEMO_TRAINING, dag.get("params") or {})
        self._client.unpause(DAG_ID)
        self._engine = create_engine_for(self._stack.metadata_url())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._engine.dispose()
        self._client.__exit__(None, None, None)
        self._stack.down(keep_services=True)

    def wait_warm(self, timeout: float) -> float:
        config = self._stack.config
        token = self._stack.secrets().manager_token
        with ClusterManagerClient(config.manager_url, token=token) as client:
            return wait_for_pools(client, timeout)

    def run(self) -> RunFigures:
        from rayline.stack.stack import DAG_ID
        from rayline.stack.workflow import follow_run, run_record

        triggered = datetime.now(UTC)
        run_id = str(self._client.trigger(DAG_ID, self._conf)["dag_run_id"])
        outcome = follow_run(self._client, DAG_ID, run_id, timeout=1800, interval=1)
        record = run_record(self._engine, DAG_ID, run_id, wait_for_end=30)
        if outcome.state != "success" or record is None:
            raise RuntimeError(f"full-stack run {outcome.state}: {outcome}")
        return split(triggered, list(record.steps), "verify_endpoint")
