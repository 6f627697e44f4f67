"""Trigger to first answered prediction: the demo workflow, split per step.

Runs the `rayline_train_and_serve` DAG on the embedded defaults (SQLite, file://
artifacts, local Ray, Airflow's ``dag.test()``) in a fresh ``RAYLINE_HOME`` with
its own Cluster Manager (and optionally on the full stack), and prints:

- total: from the trigger to the end of ``verify_endpoint``, the task that sends
  the first prediction and gets it answered;
- each step try's wall time, and the gaps between steps (Airflow's own time);
- the work the platform exists to do: the training job's run time and the
  serving start-up (the deploy job's run time), both as Ray measured them;
- the platform overhead = total - (training job + serving start-up): cluster
  provisioning and teardown, job submission, Airflow. Target: < 30 s here.

    uv run python benchmarks/workflow.py [--runs 1] [--stack] [--keep-home]

``--stack`` also runs it through the full stack (``rayline stack up``, started if
needed: Airflow's scheduler on Postgres, S3 artifacts), triggered through
Airflow's REST API, and stops the stack's processes afterwards (services kept).

Every cluster it makes is deleted at the end (`rayline down` on its home).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

# None of these imports Airflow or reads the settings: both happen in main().
from rayline.cli.demo import DEMO_TRAINING
from rayline.cli.down import down
from rayline.clusters import daemon
from rayline.config import get_settings
from rayline.metadata.migrate import upgrade
from rayline.metadata.models import WorkflowStep
from rayline.orchestration.embedded_workflow import (
    job_seconds,
    prepare_airflow,
    run_train_and_serve,
)

console = Console()
app = typer.Typer(add_completion=False)


@app.command()
def main(
    runs: int = typer.Option(1, min=1, max=10, help="Workflow runs per mode (one after another)."),
    stack: bool = typer.Option(
        False, help="Also run through the full stack (`rayline stack up`: Airflow's scheduler)."
    ),
    keep_home: bool = typer.Option(False, help="Keep the temporary RAYLINE_HOME."),
) -> None:
    """Run the workflow ``runs`` times per mode and print the per-step split."""
    figures = {"embedded": _embedded(runs, keep_home)}
    if stack:
        figures["full stack"] = _full_stack(runs)
    table = Table(title=f"trigger → first answered prediction, median of {runs} run(s)")
    for column in ("mode", "total s", "training job s", "serving start-up s", "overhead s"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, rows in figures.items():
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        table.add_row(mode, *(f"{value:.1f}" for value in medians))
    console.print(table)
    console.print("overhead = total - (training job + serving start-up); target < 30 s embedded")


Figures = tuple[float, float, float, float]  # total, training job, serving start-up, overhead


def _embedded(runs: int, keep_home: bool) -> list[Figures]:
    """The embedded default: dag.test() in this process, a fresh RAYLINE_HOME and manager."""
    home = Path(tempfile.mkdtemp(prefix="rl-bench-wf-"))
    os.environ["RAYLINE_HOME"] = str(home)
    os.environ.setdefault("RAYLINE_SERVING_MODE", "ray")
    os.environ.setdefault("RAYLINE_API_PORT", "8791")
    get_settings.cache_clear()
    settings = get_settings()
    figures: list[Figures] = []
    try:
        upgrade(settings.database_url)
        with console.status("starting a Cluster Manager and Airflow (embedded)"):
            daemon.ensure_running(settings)
            dag = prepare_airflow(home / "airflow")
        for index in range(runs):
            with console.status(f"embedded run {index + 1}/{runs}: train → serve"):
                result = run_train_and_serve(settings, dag, run_conf={"training": DEMO_TRAINING})
            if not result.succeeded:
                error = result.run.error if result.run is not None else result.state
                console.print(f"[red]run {index + 1} failed:[/] {error}")
                raise typer.Exit(1)
            title = f"embedded run {index + 1}"
            figures.append(_report(title, result.triggered_at, result.steps()))
    finally:
        down()
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)
    return figures


def _full_stack(runs: int) -> list[Figures]:
    """Airflow's scheduler on Postgres, triggered through its REST API (`rayline stack`)."""
    from rayline.metadata.db import create_engine_for
    from rayline.stack.config import StackConfig
    from rayline.stack.stack import DAG_ID, Stack
    from rayline.stack.workflow import build_conf, follow_run, run_record

    stack = Stack(StackConfig.from_env(None))
    with console.status("rayline stack up"):
        stack.up()
    figures: list[Figures] = []
    try:
        with stack.airflow_client() as client:
            dag = client.get_dag(DAG_ID)
            if dag is None:
                raise typer.BadParameter(f"the stack's Airflow has not parsed {DAG_ID}")
            conf = build_conf(DEMO_TRAINING, dag.get("params") or {})
            client.unpause(DAG_ID)
            engine = create_engine_for(stack.metadata_url())
            try:
                for index in range(runs):
                    triggered = datetime.now(UTC)
                    run_id = str(client.trigger(DAG_ID, conf)["dag_run_id"])
                    with console.status(f"full-stack run {index + 1}/{runs}: train → serve"):
                        outcome = follow_run(client, DAG_ID, run_id, timeout=1800, interval=1)
                    record = run_record(engine, DAG_ID, run_id, wait_for_end=30)
                    if outcome.state != "success" or record is None:
                        console.print(f"[red]run {index + 1} {outcome.state}:[/] {outcome}")
                        raise typer.Exit(1)
                    steps = sorted(record.steps, key=lambda s: s.id)
                    figures.append(_report(f"full-stack run {index + 1}", triggered, steps))
            finally:
                engine.dispose()
    finally:
        with console.status("rayline stack down (services kept)"):
            stack.down(keep_services=True)
    return figures


def _report(title: str, triggered: datetime, steps: list[WorkflowStep]) -> Figures:
    """Print one run's split; return its figures."""
    verify = next(s for s in steps if s.name == "verify_endpoint" and s.finished_at)
    assert verify.finished_at is not None
    total = (verify.finished_at - triggered).total_seconds()
    train = sum(job_seconds(s) or 0 for s in steps if s.name == "train" and s.finished_at)
    deploy = sum(job_seconds(s) or 0 for s in steps if s.name == "deploy" and s.finished_at)
    overhead = total - train - deploy
    _print_run(title, triggered, steps, total, train, deploy, overhead)
    return total, train, deploy, overhead


def _print_run(
    title: str,
    triggered: datetime,
    steps: list[WorkflowStep],
    total: float,
    train: float,
    deploy: float,
    overhead: float,
) -> None:
    table = Table(title=f"{title}: trigger → first answered prediction")
    table.add_column("step")
    table.add_column("try", justify="right")
    table.add_column("starts at (s)", justify="right")
    table.add_column("wall (s)", justify="right")
    table.add_column("Ray job (s)", justify="right")
    for step in steps:
        if step.started_at is None or step.finished_at is None:
            continue
        job = job_seconds(step)
        table.add_row(
            step.name,
            str(step.try_number),
            f"{(step.started_at - triggered).total_seconds():.1f}",
            f"{(step.finished_at - step.started_at).total_seconds():.1f}",
            f"{job:.1f}" if job is not None else "",
        )
    console.print(table)
    summary = Table(show_header=False)
    summary.add_row("total, trigger → first answered prediction", f"{total:.1f} s")
    summary.add_row("training job (Ray's run time)", f"{train:.1f} s")
    summary.add_row("serving start-up (deploy job's run time)", f"{deploy:.1f} s")
    summary.add_row(
        "[bold]platform overhead[/] (total - training - serving start-up)",
        f"[bold]{overhead:.1f} s[/] ({overhead / total:.0%} of total; target < 30 s)",
    )
    console.print(summary)


if __name__ == "__main__":
    app()
