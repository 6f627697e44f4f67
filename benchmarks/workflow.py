"""Trigger to first answered prediction: the demo workflow, split per step.

Runs the `rayline_train_and_serve` DAG on the embedded defaults (SQLite, file://
artifacts, local Ray, Airflow's ``dag.test()``) in a fresh ``RAYLINE_HOME`` with
its own Cluster Manager, and prints:

- total: from the trigger to the end of ``verify_endpoint``, the task that sends
  the first prediction and gets it answered;
- each step try's wall time, and the gaps between steps (Airflow's own time);
- the work the platform exists to do: the training job's run time and the
  serving start-up (the deploy job's run time), both as Ray measured them;
- the platform overhead = total - (training job + serving start-up): cluster
  provisioning and teardown, job submission, Airflow. Target: < 30 s here.

    uv run python benchmarks/workflow.py [--runs 1] [--keep-home]

Every cluster it makes is deleted at the end (`rayline down` on its home).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from datetime import datetime
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
    runs: int = typer.Option(1, min=1, max=10, help="Workflow runs (one after another)."),
    keep_home: bool = typer.Option(False, help="Keep the temporary RAYLINE_HOME."),
) -> None:
    """Run the embedded workflow ``runs`` times and print the per-step split."""
    home = Path(tempfile.mkdtemp(prefix="rl-bench-wf-"))
    os.environ["RAYLINE_HOME"] = str(home)
    os.environ.setdefault("RAYLINE_SERVING_MODE", "ray")
    os.environ.setdefault("RAYLINE_API_PORT", "8791")
    get_settings.cache_clear()
    settings = get_settings()
    totals: list[float] = []
    overheads: list[float] = []
    try:
        upgrade(settings.database_url)
        with console.status("starting a Cluster Manager and Airflow (embedded)"):
            daemon.ensure_running(settings)
            dag = prepare_airflow(home / "airflow")
        for index in range(runs):
            with console.status(f"run {index + 1}/{runs}: train → serve"):
                result = run_train_and_serve(settings, dag, run_conf={"training": DEMO_TRAINING})
            if not result.succeeded:
                error = result.run.error if result.run is not None else result.state
                console.print(f"[red]run {index + 1} failed:[/] {error}")
                raise typer.Exit(1)
            steps = result.steps()
            verify = next(s for s in steps if s.name == "verify_endpoint" and s.finished_at)
            assert verify.finished_at is not None
            total = (verify.finished_at - result.triggered_at).total_seconds()
            train = sum(job_seconds(s) or 0 for s in steps if s.name == "train" and s.finished_at)
            deploy = sum(job_seconds(s) or 0 for s in steps if s.name == "deploy" and s.finished_at)
            overhead = total - train - deploy
            totals.append(total)
            overheads.append(overhead)
            _print_run(index + 1, result.triggered_at, steps, total, train, deploy, overhead)
        if runs > 1:
            console.print(
                f"median over {runs} runs: total {statistics.median(totals):.1f} s, "
                f"platform overhead {statistics.median(overheads):.1f} s"
            )
    finally:
        down()
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)


def _print_run(
    number: int,
    triggered: datetime,
    steps: list[WorkflowStep],
    total: float,
    train: float,
    deploy: float,
    overhead: float,
) -> None:
    table = Table(title=f"run {number}: trigger → first answered prediction")
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
