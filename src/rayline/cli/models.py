"""`rayline models ...`: the registered models and their versions, as rich tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, func, select

from rayline.metadata import (
    ModelRegistry,
    ModelVersion,
    NotFoundError,
    RegisteredModel,
    create_engine_for,
    session_scope,
)

__all__ = ["app"]

app = typer.Typer(help="Registered models: list them, show a version.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@contextmanager
def _engine() -> Iterator[Engine]:
    from rayline.config import get_settings
    from rayline.metadata.migrate import upgrade

    url = get_settings().database_url
    upgrade(url)  # a fresh RAYLINE_HOME has no tables yet: migrate, as the manager does
    engine = create_engine_for(url)
    try:
        yield engine
    except NotFoundError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="List this model's versions.")] = None,
) -> None:
    """List registered models, or the versions of one model."""
    with _engine() as engine:
        if name is not None:
            console.print(_versions_table(name, ModelRegistry().list_versions(engine, name=name)))
            return
        with session_scope(engine) as session:
            latest = (
                select(ModelVersion.model_name, func.max(ModelVersion.created_at).label("at"))
                .group_by(ModelVersion.model_name)
                .subquery()
            )
            rows = session.execute(
                select(RegisteredModel.name, RegisteredModel.latest_version, latest.c.at)
                .outerjoin(latest, latest.c.model_name == RegisteredModel.name)
                .order_by(RegisteredModel.name)
            ).all()
    if not rows:
        console.print("no models registered yet; train one with `rayline train SPEC`")
        return
    table = Table("MODEL", "LATEST VERSION", "LAST TRAINED")
    for model, version, at in rows:
        table.add_row(Text(model), str(version), at.strftime("%Y-%m-%d %H:%M:%S") if at else "-")
    console.print(table)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Model, latest by default.")],
) -> None:
    """Show one model version: artifacts, metrics, params and lineage."""
    name, _, raw = ref.partition(":")
    if raw and not raw.isdigit():
        raise typer.BadParameter(f"version {raw!r} must be a number, e.g. {name}:3")
    with _engine() as engine:
        row = ModelRegistry().get_version(engine, name=name, version=int(raw) if raw else None)
    console.print(_version_table(row))
    console.print(_mapping_table("metrics", row.metrics))
    console.print(_mapping_table("params", row.params))
    if row.signature:
        inputs = ", ".join(f"{f['name']} ({f['type']})" for f in row.signature.get("inputs", []))
        console.print(Text(f"inputs: {inputs}", overflow="fold"))


@app.command("sync-mlflow")
def sync_mlflow(
    name: Annotated[
        str | None, typer.Argument(help="Only this model (default: every one).")
    ] = None,
) -> None:
    """Create the MLflow runs and model versions Rayline's versions lack; set alias `live`.

    For versions trained while MLflow was down or tracking was off. Safe to run
    again: what MLflow already has is left as it is.
    """
    from rayline.cli.models_sync import run_sync

    with _engine() as engine:
        run_sync(engine, name)


def _versions_table(name: str, rows: list[ModelVersion]) -> Table:
    table = Table(
        "VERSION", "STATUS", "FRAMEWORK", "TASK", "CREATED", "KEY METRIC",
        title=f"model {name}", title_justify="left",
    )  # fmt: skip
    for v in rows:
        key = next((k for k in sorted(v.metrics) if k.startswith("validation_")), None)
        metric = f"{key}={v.metrics[key]:.4g}" if key else "-"
        table.add_row(
            str(v.version),
            v.status.value,
            v.framework or "-",
            v.task or "-",
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            metric,
        )
    return table


def _version_table(v: ModelVersion) -> Table:
    table = Table(
        title=f"model {v.model_name} version {v.version}", show_header=False, title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("status", v.status.value),
        ("framework", v.framework or "-"),
        ("task", v.task or "-"),
        ("artifacts", v.artifact_uri),
        ("manifest sha256", v.sha256),
        ("dataset", v.dataset_uri or "-"),
        ("dataset sha256", v.dataset_sha256 or "-"),
        ("code version", v.code_version or "-"),
        ("workflow run", str(v.workflow_run_id) if v.workflow_run_id is not None else "-"),
        ("mlflow run", v.mlflow_run_id or "- (`rayline models sync-mlflow` records it)"),
        ("created", v.created_at.strftime("%Y-%m-%d %H:%M:%S")),
    ]
    for key, value in rows:
        table.add_row(key, Text(value))
    return table


def _mapping_table(title: str, values: dict[str, Any]) -> Table:
    table = Table("NAME", "VALUE", title=title, title_justify="left")
    for key, value in sorted(values.items()):
        table.add_row(Text(key), Text(f"{value:.6g}" if isinstance(value, float) else str(value)))
    return table
