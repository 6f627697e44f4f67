"""Workflow and training series computed from the metadata store at scrape time.

The orchestration layer records every workflow run and step in the metadata store
(`rayline.metadata.workflows`); this collector turns those rows into Prometheus
series on the Cluster Manager's ``/metrics``, so nothing has to push metrics and a
restarted manager loses nothing:

* ``rayline_workflow_runs{dag_id,status}``: runs by status (gauge);
* ``rayline_workflow_run_duration_seconds{dag_id,status}``: finished runs (histogram);
* ``rayline_workflow_steps{dag_id,step,status}``: step tries by status (gauge);
* ``rayline_workflow_step_duration_seconds{dag_id,step,status}``: finished step tries
  (histogram);
* ``rayline_model_version_metric{model,version,metric}``: the numeric training metrics
  of the newest registered model versions (gauge);
* ``rayline_workflow_metrics_up``: 1 when the store answered this scrape, else 0.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from rayline.metadata.enums import ModelVersionStatus
from rayline.metadata.models import ModelVersion, WorkflowRun, WorkflowStep

__all__ = ["DURATION_BUCKETS", "WorkflowCollector", "histogram"]

log = logging.getLogger(__name__)

DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
_MODEL_VERSIONS = 200  # newest versions whose metrics are exported


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    samples: Iterable[tuple[tuple[str, ...], float]],
    buckets: Sequence[float] = DURATION_BUCKETS,
) -> HistogramMetricFamily:
    """A histogram family from ``(label values, observation)`` pairs."""
    per_key: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for key, value in samples:
        per_key[key].append(value)
    family = HistogramMetricFamily(name, documentation, labels=list(labelnames))
    for key, values in sorted(per_key.items()):
        counts = [0] * (len(buckets) + 1)
        for value in values:
            counts[bisect.bisect_left(buckets, value)] += 1
        cumulative, running = [], 0
        for bound, count in zip([*map(str, buckets), "+Inf"], counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric(list(key), cumulative, sum(values))
    return family


def _counts(
    name: str, documentation: str, labelnames: list[str], keys: Iterable[tuple[str, ...]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labelnames)
    for key, count in sorted(Counter(keys).items()):
        family.add_metric(list(key), count)
    return family


def _seconds(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None or finished is None:
        return None
    return max(0.0, (finished - started).total_seconds())


class WorkflowCollector(Collector):
    """A prometheus-client collector reading workflow and model rows on each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        """Yield the families; ``rayline_workflow_metrics_up`` 0 when the store failed."""
        up = GaugeMetricFamily(
            "rayline_workflow_metrics_up",
            "1 when the metadata store answered the workflow metrics query of this scrape.",
        )
        try:
            families = self._families()
        except Exception:  # a scrape must not fail because the store hiccupped
            log.exception("workflow metrics: reading the metadata store failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        with self._sessions() as session:
            runs = session.execute(
                select(
                    WorkflowRun.id,
                    WorkflowRun.dag_id,
                    WorkflowRun.status,
                    WorkflowRun.started_at,
                    WorkflowRun.finished_at,
                )
            ).all()
            steps = session.execute(
                select(
                    WorkflowStep.run_id,
                    WorkflowStep.name,
                    WorkflowStep.status,
                    WorkflowStep.started_at,
                    WorkflowStep.finished_at,
                )
            ).all()
            versions = session.execute(
                select(ModelVersion.model_name, ModelVersion.version, ModelVersion.metrics)
                .where(ModelVersion.status == ModelVersionStatus.READY)
                .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
                .limit(_MODEL_VERSIONS)
            ).all()
        dag_of = {run.id: run.dag_id for run in runs}
        families: list[Metric] = []

        families.append(
            _counts(
                "rayline_workflow_runs",
                "Workflow runs by status.",
                ["dag_id", "status"],
                ((r.dag_id, str(r.status)) for r in runs),
            )
        )
        families.append(
            histogram(
                "rayline_workflow_run_duration_seconds",
                "Duration of finished workflow runs.",
                ["dag_id", "status"],
                (
                    ((r.dag_id, str(r.status)), d)
                    for r in runs
                    if (d := _seconds(r.started_at, r.finished_at)) is not None
                ),
            )
        )

        families.append(
            _counts(
                "rayline_workflow_steps",
                "Workflow step tries by status.",
                ["dag_id", "step", "status"],
                ((dag_of.get(s.run_id, ""), s.name, str(s.status)) for s in steps),
            )
        )
        families.append(
            histogram(
                "rayline_workflow_step_duration_seconds",
                "Duration of finished workflow step tries.",
                ["dag_id", "step", "status"],
                (
                    ((dag_of.get(s.run_id, ""), s.name, str(s.status)), d)
                    for s in steps
                    if (d := _seconds(s.started_at, s.finished_at)) is not None
                ),
            )
        )

        gauge = GaugeMetricFamily(
            "rayline_model_version_metric",
            "Numeric training metrics of the newest registered model versions.",
            labels=["model", "version", "metric"],
        )
        for name, version, metrics in versions:
            for metric, value in sorted((metrics or {}).items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    gauge.add_metric([name, str(version), metric], float(value))
        families.append(gauge)
        return families
