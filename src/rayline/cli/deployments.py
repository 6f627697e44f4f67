"""`rayline deployments ...`: list, show, roll back, delete and watch served models."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rayline.cli.deploy import (
    ClusterOption,
    JsonOption,
    LocalOption,
    PortOption,
    failures,
    print_deployment,
    run_action,
)
from rayline.jobs.requests import DeployRequest
from rayline.metadata import Deployment, DeploymentStatus

__all__ = ["app"]

app = typer.Typer(help="Served models: list, show, rollback, delete, watch.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

_STATUS_STYLES = {
    DeploymentStatus.PENDING: "yellow",
    DeploymentStatus.STARTING: "yellow",
    DeploymentStatus.LIVE: "green",
    DeploymentStatus.DRAINING: "dim",
    DeploymentStatus.STOPPED: "dim",
    DeploymentStatus.FAILED: "red",
}


def _engine() -> Any:
    from rayline.config import get_settings
    from rayline.metadata import create_engine_for
    from rayline.metadata.migrate import upgrade

    url = get_settings().database_url
    upgrade(url)  # a fresh RAYLINE_HOME has no tables yet: migrate, as the manager does
    return create_engine_for(url)


def _as_dict(row: Deployment) -> dict[str, Any]:
    return {
        "id": row.id,
        "model": row.model_name,
        "version": row.model_version,
        "status": str(row.status),
        "mode": str(row.mode),
        "url": row.endpoint_url,
        "port": row.port,
        "image": row.image,
        "container_id": row.container_id,
        "cluster_id": row.cluster_id,
        "workflow_run_id": row.workflow_run_id,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _status(row: Deployment) -> Text:
    return Text(str(row.status), style=_STATUS_STYLES.get(row.status, ""))


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_(
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Also stopped and failed deployments.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List deployments, newest first (active ones unless --all)."""
    from rayline.serving import records

    with failures():
        rows = records.list_deployments(
            _engine(), model=model, statuses=None if all_ else records.ACTIVE
        )
    if json_output:
        console.print_json(json.dumps([_as_dict(r) for r in rows]))
        return
    if not rows:
        console.print("no deployments" + ("" if all_ else " are active (see --all)"))
        return
    table = Table()
    table.add_column("ID", no_wrap=True)
    for header in ("MODEL", "VERSION", "STATUS", "MODE", "ENDPOINT", "CREATED"):
        table.add_column(header, overflow="fold")
    for r in rows:
        table.add_row(
            Text(r.id),
            Text(r.model_name),
            str(r.model_version),
            _status(r),
            str(r.mode),
            Text(r.endpoint_url or "-"),
            _when(r.created_at),
        )
    console.print(table)


@app.command("show")
def show(
    target: Annotated[str, typer.Argument(help="Deployment id, or a model name.")],
    json_output: JsonOption = False,
) -> None:
    """Show a deployment (or the active ones of a model), with its error if it failed."""
    from rayline.serving import records

    with failures():
        rows = records.find_deployments(_engine(), target)
    if json_output:
        console.print_json(json.dumps([_as_dict(r) for r in rows]))
        return
    for row in rows:
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in _as_dict(row).items():
            if key == "status":
                table.add_row(key, _status(row))
            elif value is not None:
                table.add_row(key, Text(str(value)))
        console.print(table)


@app.command("rollback")
def rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    port: PortOption = None,
    cluster_id: ClusterOption = None,
    local: LocalOption = False,
    json_output: JsonOption = False,
) -> None:
    """Serve the version that was live before the current one, without downtime."""
    request = DeployRequest(action="rollback", model=model, port=port, cluster_id=cluster_id)
    with failures():
        result = run_action(request, local=local)
    print_deployment(result, as_json=json_output)


@app.command("delete")
def delete(
    target: Annotated[str, typer.Argument(help="Deployment id, or a model name (all of it).")],
    cluster_id: ClusterOption = None,
    local: LocalOption = False,
) -> None:
    """Withdraw the endpoint, drain in-flight requests and stop the server."""
    with failures():
        request = DeployRequest(action="delete", model=target, cluster_id=cluster_id)
        result = run_action(request, local=local)
    deleted = result.get("deleted") or []
    if not deleted:
        console.print(f"nothing of {escape(target)} was running")
    for item in deleted:
        console.print(f"deployment [bold]{item['deployment_id']}[/] stopped")


@app.command("watch")
def watch(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between checks.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
) -> None:
    """Mark deployments whose server died FAILED and withdraw their endpoints."""
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import get_settings
    from rayline.serving.health import Failure, check_deployments, watch_deployments

    def report(failure: Failure) -> None:
        console.print(
            f"deployment [bold]{failure.deployment_id}[/] ({escape(failure.model)} v"
            f"{failure.version}) FAILED: {escape(failure.reason)}",
            soft_wrap=True,
        )

    settings = get_settings()
    with failures(), ClusterManagerClient() as manager:
        if once:
            for failure in check_deployments(settings=settings, engine=_engine(), manager=manager):
                report(failure)
            return
        stop = threading.Event()
        try:
            watch_deployments(
                settings=settings,
                engine=_engine(),
                manager=manager,
                interval=interval,
                stop=stop,
                on_failure=report,
            )
        except KeyboardInterrupt:
            stop.set()
