"""`rayline models sync-mlflow [NAME]`: catch MLflow up with Rayline's registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, select

if TYPE_CHECKING:
    from rayline.tracking.sync import SyncItem

__all__ = ["run_sync"]

console = Console()
err_console = Console(stderr=True)

_STYLE = {
    "created": "green",
    "completed": "green",
    "linked": "cyan",
    "alias set": "cyan",
    "up to date": "dim",
    "failed": "red",
}


def run_sync(engine: Engine, name: str | None) -> None:
    """Sync model ``name`` (or every model) with MLflow, showing progress, then a summary.

    Raises:
        typer.Exit: Tracking is off (2), MLflow is unusable or an item failed (1).
    """
    from rayline.config import get_settings
    from rayline.tracking.connect import open_client
    from rayline.tracking.errors import TrackingError
    from rayline.tracking.settings import TrackingSettings
    from rayline.tracking.sync import sync_models

    tracking = TrackingSettings()
    if not tracking.enabled:
        err_console.print(
            "[red]error:[/] tracking is off: set RAYLINE_MLFLOW_TRACKING_URI to the MLflow "
            "server to sync with"
        )
        raise typer.Exit(2)
    names = [name] if name is not None else _model_names(engine)
    total = _version_count(engine, names)  # an unknown name fails here, before MLflow
    try:
        client = open_client(tracking)
        with Progress(
            TextColumn("[bold]syncing with MLflow[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=total)

            def advance(item: SyncItem) -> None:
                progress.update(task, description=f"{item.model} v{item.version}")
                if item.kind == "version":
                    progress.advance(task)

            items = sync_models(
                engine,
                names,
                settings=get_settings(),
                tracking=tracking,
                client=client,
                on_item=advance,
            )
    except TrackingError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(_summary(items))
    failed = sum(item.action == "failed" for item in items)
    if failed:
        err_console.print(f"[red]{failed} item(s) failed[/]; fix the cause and run it again")
        raise typer.Exit(1)


def _model_names(engine: Engine) -> list[str]:
    from rayline.metadata import RegisteredModel, session_scope

    with session_scope(engine) as session:
        return list(session.scalars(select(RegisteredModel.name).order_by(RegisteredModel.name)))


def _version_count(engine: Engine, names: list[str]) -> int:
    from rayline.metadata import ModelRegistry

    return sum(len(ModelRegistry().list_versions(engine, name=n)) for n in names)


def _summary(items: list[SyncItem]) -> Table:
    table = Table(
        "MODEL", "VERSION", "WHAT", "ACTION", "DETAIL", title="MLflow sync", title_justify="left"
    )
    for item in items:
        style = _STYLE.get(item.action, "")
        table.add_row(
            Text(item.model),
            str(item.version),
            "alias live" if item.kind == "alias" else "version",
            Text(item.action, style=style),
            Text(item.detail, overflow="fold"),
        )
    counts: dict[str, int] = {}
    for item in items:
        counts[item.action] = counts.get(item.action, 0) + 1
    table.caption = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing"
    return table
