"""`rayline workflow list|show`: the workflow runs recorded in the metadata store.

Every run of a Rayline DAG, whoever ran it (``rayline demo``, Airflow's scheduler),
is recorded with its steps, their tries, timings, errors and what each produced
(cluster, model version, deployment); these commands read those records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, select

from rayline.metadata import create_engine_for, session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import WorkflowRun, WorkflowStep
from rayline.orchestration.progress import StepEvent, StepFollower

__all__ = ["app"]

app = typer.Typer(
    help="Workflow runs: run one on the stack's Airflow, list them, show one with its steps.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

_STATUS_STYLE = {
    WorkflowStatus.QUEUED: "dim",
    WorkflowStatus.RUNNING: "cyan",
    WorkflowStatus.SUCCESS: "green",
    WorkflowStatus.FAILED: "red",
}


@contextmanager
def _engine() -> Iterator[Engine]:
    from rayline.config import get_settings

    engine = create_engine_for(get_settings().database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest runs to show.")] = 20,
    status: Annotated[
        WorkflowStatus | None, typer.Option(help="Only runs with this status.")
    ] = None,
) -> None:
    """List the newest workflow runs."""
    with _engine() as engine, session_scope(engine) as session:
        query = select(WorkflowRun).order_by(WorkflowRun.id.desc()).limit(limit)
        if status is not None:
            query = query.where(WorkflowRun.status == status)
        runs = session.scalars(query).all()
        if not runs:
            console.print("no workflow runs recorded yet; `rayline demo` makes one")
            return
        table = Table("ID", "DAG", "RUN", "STATUS", "STARTED", "SECONDS", "ERROR")
        for run in runs:
            table.add_row(
                str(run.id),
                Text(run.dag_id),
                Text(run.external_run_id),
                Text(run.status.value, style=_STATUS_STYLE[run.status]),
                _when(run.started_at),
                _seconds(run.started_at, run.finished_at),
                Text((run.error or "").splitlines()[0][:80] if run.error else ""),
            )
        console.print(table)


@app.command("show")
def show(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="Our run id (a number) or Airflow's run id.")
    ],
) -> None:
    """Show one run: status, error, and every step try with its timing and outputs."""
    with _engine() as engine, session_scope(engine) as session:
        query = select(WorkflowRun).where(WorkflowRun.external_run_id == run_ref)
        if run_ref.isdigit():
            query = select(WorkflowRun).where(WorkflowRun.id == int(run_ref))
        run = session.scalars(query.order_by(WorkflowRun.id.desc()).limit(1)).one_or_none()
        if run is None:
            err_console.print(f"[red]error:[/] no workflow run {escape(run_ref)!r} is recorded")
            raise typer.Exit(1)
        header = Table(show_header=False, title=f"workflow run {run.id}", title_justify="left")
        header.add_column(style="bold")
        header.add_column(overflow="fold")
        header.add_row("DAG", Text(run.dag_id))
        header.add_row("Airflow run", Text(run.external_run_id))
        header.add_row("status", Text(run.status.value, style=_STATUS_STYLE[run.status]))
        header.add_row("started", _when(run.started_at))
        header.add_row("finished", _when(run.finished_at))
        header.add_row("seconds", _seconds(run.started_at, run.finished_at))
        if run.error:
            header.add_row("error", Text(run.error, style="red"))
        console.print(header)
        steps = session.scalars(
            select(WorkflowStep).where(WorkflowStep.run_id == run.id).order_by(WorkflowStep.id)
        ).all()
        table = Table("STEP", "TRY", "STATUS", "SECONDS", "CLUSTER", "MODEL VERSION", "DEPLOYMENT")
        for step in steps:
            table.add_row(
                Text(step.name),
                str(step.try_number),
                Text(step.status.value, style=_STATUS_STYLE[step.status]),
                _seconds(step.started_at, step.finished_at),
                step.cluster_id or "",
                str(step.model_version_id) if step.model_version_id is not None else "",
                step.deployment_id or "",
            )
        console.print(table)
        for step in steps:
            if step.error:
                console.print(Text(f"{step.name} (try {step.try_number}): {step.error}", "red"))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.1f}"


_STEP_MARKS = {
    WorkflowStatus.RUNNING: "[cyan]…[/]",
    WorkflowStatus.SUCCESS: "[green]✓[/]",
    WorkflowStatus.FAILED: "[red]✗[/]",
}


@app.command("run")
def run(
    spec: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="Training spec (YAML), or a whole run conf."
        ),
    ],
    serving_spec: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Serving spec (YAML): replicas, batching."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1024, max=65535, help="Port to serve on (default: free one).")
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help='Request for the endpoint check: {"instances": [...]}.',
        ),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="The stack's state dir (see `rayline stack up`).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to follow the run.")] = 3600,
) -> None:
    """Run `rayline_train_and_serve` on the stack's Airflow and follow it to its end."""
    from rayline.cli.stack import load_stack
    from rayline.stack.airflow import AirflowApiError
    from rayline.stack.stack import DAG_ID
    from rayline.stack.workflow import build_conf, follow_run, load_yaml, run_record

    stack = load_stack(state_dir)
    try:
        with stack.airflow_client() as client:
            dag = client.get_dag(DAG_ID)
            if dag is None:
                err_console.print(f"[red]error:[/] Airflow has not parsed {DAG_ID} (yet)")
                raise typer.Exit(1)
            conf = build_conf(
                load_yaml(spec),
                dag.get("params") or {},
                serving_spec=load_yaml(serving_spec) if serving_spec else None,
                port=port,
                sample_request=load_yaml(sample) if sample else None,
            )
            client.unpause(DAG_ID)
            began = datetime.now(UTC)
            run_id = str(client.trigger(DAG_ID, conf)["dag_run_id"])
            console.print(f"triggered {DAG_ID} run [bold]{escape(run_id)}[/] on {client.base_url}")
            engine = create_engine_for(stack.metadata_url())
            try:
                with StepFollower(engine, DAG_ID, began, _print_step, run_id=run_id):
                    outcome = follow_run(
                        client,
                        DAG_ID,
                        run_id,
                        timeout=timeout,
                        on_state=lambda s: console.print(f"  Airflow run state: {s}"),
                    )
                record = run_record(engine, DAG_ID, run_id, wait_for_end=30)
            finally:
                engine.dispose()
            verified = (
                client.xcom(DAG_ID, run_id, "verify_endpoint")
                if outcome.state == "success"
                else None
            )
    except (AirflowApiError, httpx.HTTPError, FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(1) from err
    record_id = (
        f" (workflow run {record.id}: `rayline workflow show {record.id}`)" if record else ""
    )
    if outcome.state != "success" or not isinstance(verified, dict):
        reason = (record.error if record is not None else None) or ", ".join(outcome.failed_tasks)
        err_console.print(
            f"[red]the run {outcome.state}[/]{record_id}: {escape(reason or 'no reason recorded')}"
        )
        raise typer.Exit(1)
    console.print(f"[green]the run succeeded[/]{record_id}")
    console.print(f"[bold]model[/]      {verified['model']} version {verified['version']}")
    console.print(
        f"[bold]endpoint[/]   {verified['endpoint_url']} "
        f"(deployment {verified.get('deployment_id')})"
    )
    console.print(f"[bold]request[/]    {conf['serving']['sample_request']}")
    console.print(f"[bold]prediction[/] {escape(str(verified['predictions']))}")


def _print_step(event: StepEvent) -> None:
    retry = f" (try {event.try_number})" if event.try_number > 1 else ""
    took = f"  {event.seconds:.1f} s" if event.seconds is not None else ""
    why = (event.error or "").splitlines()[:1] if event.status == WorkflowStatus.FAILED else []
    line = f"  {_STEP_MARKS.get(event.status, '·')} {event.name}{retry}{took}"
    console.print(line + (f"  {escape(why[0])}" if why else ""))
