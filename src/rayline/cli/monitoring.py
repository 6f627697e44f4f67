"""`rayline monitoring up|down|status`: Rayline's Prometheus server on its own.

A thin wrapper over `deploy/monitoring.sh`, which holds the one implementation so
the Makefile, the stack and this command start Prometheus the same way. Grafana
dashboards to point at it are in `deploy/grafana/`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer

app = typer.Typer(
    help="Prometheus on loopback, scraping the targets the Cluster Manager writes.",
    no_args_is_help=True,
)

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "monitoring.sh"


def _run(command: str) -> None:
    if not SCRIPT.is_file():
        raise typer.BadParameter(
            f"{SCRIPT} not found: `rayline monitoring` runs from a source checkout"
        )
    result = subprocess.run([str(SCRIPT), command], check=False)
    raise typer.Exit(result.returncode)


@app.command("up")
def up() -> None:
    """Install if needed, render the config, start (or reload) Prometheus, wait until ready."""
    _run("up")


@app.command("down")
def down() -> None:
    """Stop the Prometheus `up` started (and nothing else)."""
    _run("down")


@app.command("status")
def status() -> None:
    """Say whether Prometheus is up, and its URL (exit 3 when down)."""
    _run("status")
