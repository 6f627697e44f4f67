"""`rayline db ...`: metadata store migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from rayline.config import get_settings
from rayline.metadata.migrate import current_revision, upgrade

app = typer.Typer(help="Metadata store (SQLite or Postgres) migrations.", no_args_is_help=True)
console = Console()


@app.command("upgrade")
def upgrade_command() -> None:
    """Apply every Alembic migration up to head on RAYLINE_DATABASE_URL."""
    url = get_settings().database_url
    upgrade(url)
    console.print(f"[green]metadata store at revision[/] {current_revision(url)}")


@app.command("current")
def current_command() -> None:
    """Print the metadata store's current Alembic revision."""
    console.print(current_revision(get_settings().database_url) or "(empty database)")
