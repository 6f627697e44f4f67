"""`rayline demo`: the whole train → serve workflow on the embedded defaults.

Nothing to set up: SQLite metadata, `file://` artifacts and local Ray clusters
under `$RAYLINE_HOME`, the Cluster Manager started in the background on loopback,
and the `rayline_train_and_serve` DAG run by Airflow's ``dag.test()`` in this
process (Airflow's own SQLite database under `$RAYLINE_HOME/airflow`). The DAG
trains a model on a dataset scikit-learn ships, deletes the training cluster,
serves the model on a serving cluster (in a Docker container when an engine
answers and ``RAYLINE_SERVING_MODE`` allows it, else as a Serve app on the
cluster) and checks it answers. The demo then sends its own prediction request
and prints the endpoint, the model version, its metrics and the step timings.
The model stays served until `rayline down`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayline.clusters import daemon
from rayline.config import get_settings
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.migrate import upgrade
from rayline.metadata.models import Deployment, ModelVersion
from rayline.orchestration.embedded_workflow import (
    DAG_ID,
    WorkflowResult,
    prepare_airflow,
    run_train_and_serve,
)
from rayline.orchestration.progress import StepEvent
from rayline.tracking.settings import embedded_tracking_uri

__all__ = ["DEMO_SAMPLE", "DEMO_TRAINING", "run_demo"]

console = Console()

#: A random forest on the iris data scikit-learn ships: nothing is downloaded.
DEMO_TRAINING: dict[str, Any] = {
    "spec_version": 1,
    "name": "iris-demo",
    "dataset": "sklearn:iris",
    "target": "target",
    "task": "classification",
    "framework": "sklearn",
    "hyperparameters": {"n_estimators": 100, "max_depth": 4},
    "workers": 1,
    "cpus_per_worker": 1,
    "validation_split": 0.2,
    "seed": 7,
}

#: Two flowers: a setosa and a virginica.
DEMO_SAMPLE: dict[str, Any] = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def run_demo() -> None:
    """Train a model, serve it and query it, all on the embedded defaults."""
    settings = get_settings()
    timings: list[tuple[str, float]] = []
    tracking_uri = track_locally(settings.home)

    with _timed(timings, "metadata store migrated"), console.status("migrating the metadata"):
        upgrade(settings.database_url)
    with _timed(timings, "Cluster Manager up"), console.status("starting the Cluster Manager"):
        fresh = daemon.ensure_running(settings)
    console.print(
        f"Cluster Manager {'started' if fresh else 'already running'} at "
        f"{settings.cluster_manager_url} (log: {daemon.log_file(settings)})"
    )
    with _timed(timings, "Airflow ready"), console.status("preparing Airflow (embedded)"):
        dag = prepare_airflow(settings.home / "airflow")

    console.rule(f"DAG {DAG_ID}: train → serve")
    with _timed(timings, "workflow (DAG run)"):
        result = run_train_and_serve(
            settings, dag, run_conf={"training": DEMO_TRAINING}, report=_print_step
        )
    if not result.succeeded or result.deployment is None or result.version is None:
        _print_timings(timings, result)
        error = result.run.error if result.run is not None else None
        console.print(f"[red]the workflow failed[/]: {escape(error or result.state)}")
        console.print("A failed run leaves no cluster running; check with `rayline clusters list`.")
        raise typer.Exit(1)

    deployment = result.deployment
    url = f"{deployment.endpoint_url}/v1/models/{deployment.model_name}:predict"
    with _timed(timings, "prediction (from this process)"):
        response = httpx.post(url, json=DEMO_SAMPLE, timeout=30)
        response.raise_for_status()
    _print_timings(timings, result)
    _print_result(deployment, result.version, url, response.json())
    _print_tracking(result.version, tracking_uri)


def track_locally(home: Path) -> str:
    """Turn MLflow tracking on in MLflow's local store under ``home/mlflow``.

    Only when the user has not chosen: an explicit ``RAYLINE_MLFLOW_TRACKING_URI``
    (empty turns tracking off) is kept. The demo trains even when MLflow fails
    (``RAYLINE_MLFLOW_REQUIRED=false`` unless set). The training job inherits both
    variables. Returns the tracking URI in effect ("" when off).
    """
    if "RAYLINE_MLFLOW_TRACKING_URI" not in os.environ:
        os.environ["RAYLINE_MLFLOW_TRACKING_URI"] = embedded_tracking_uri(home)
        os.environ.setdefault("RAYLINE_MLFLOW_REQUIRED", "false")
    return os.environ["RAYLINE_MLFLOW_TRACKING_URI"]


def _print_tracking(version: ModelVersion, tracking_uri: str) -> None:
    if not tracking_uri:
        return
    if version.mlflow_run_id is None:
        console.print(
            f"[yellow]MLflow[/]     this run was not tracked ({tracking_uri}): see the log"
        )
        return
    console.print(f"[bold]MLflow run[/] {version.mlflow_run_id} in {tracking_uri}")
    console.print(f"  browse it: uv run mlflow ui --backend-store-uri {tracking_uri}")


def _print_step(event: StepEvent) -> None:
    retry = f" (try {event.try_number})" if event.try_number > 1 else ""
    if event.status == WorkflowStatus.RUNNING:
        console.print(f"  [cyan]…[/] {event.name}{retry}")
    elif event.status == WorkflowStatus.SUCCESS:
        console.print(f"  [green]✓[/] {event.name}{retry}  {event.seconds or 0:.1f} s")
    elif event.status == WorkflowStatus.FAILED:
        why = (event.error or "").splitlines()[0:1]
        console.print(f"  [red]✗[/] {event.name}{retry}  {escape(why[0] if why else '')}")


class _timed:
    """Append ``(label, seconds)`` to ``timings`` when the block ends (also on error)."""

    def __init__(self, timings: list[tuple[str, float]], label: str) -> None:
        self._timings = timings
        self._label = label
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._timings.append((self._label, time.monotonic() - self._started))


def _print_timings(timings: list[tuple[str, float]], result: WorkflowResult) -> None:
    table = Table(title="demo timings")
    table.add_column("step")
    table.add_column("try", justify="right")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    for label, seconds in timings:
        table.add_row(label, "", "", f"{seconds:.1f}")
    for step in result.steps():
        took = (
            f"{(step.finished_at - step.started_at).total_seconds():.1f}"
            if step.started_at and step.finished_at
            else "-"
        )
        table.add_row(f"  DAG task {step.name}", str(step.try_number), step.status.value, took)
    table.add_row("[bold]total[/]", "", "", f"[bold]{sum(s for _, s in timings):.1f}[/]")
    console.print(table)


def _print_result(
    deployment: Deployment, version: ModelVersion, url: str, answer: dict[str, Any]
) -> None:
    metrics = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sorted(_flat(version.metrics).items())
    )
    console.print(f"[bold]model[/]      {version.model_name} version {version.version}")
    console.print(f"[bold]artifact[/]   {version.artifact_uri}")
    console.print(f"[bold]metrics[/]    {escape(metrics)}")
    console.print(
        f"[bold]endpoint[/]   {deployment.endpoint_url} ({deployment.mode.value}, "
        f"deployment {deployment.id})"
    )
    console.print(f"[bold]request[/]    POST {url} {DEMO_SAMPLE}")
    console.print(f"[bold]prediction[/] {escape(str(answer.get('predictions')))}")
    console.print(
        f"\nThe model stays served: try\n  curl -s -X POST {url} -H 'content-type: "
        "application/json' -d '{\"instances\": [[5.9, 3.0, 5.1, 1.8]]}'\n"
        "Stop everything (serving cluster, Cluster Manager) with `rayline down`."
    )


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
