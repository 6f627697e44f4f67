"""`rayline services ...`: start, stop and report the real local services.

A thin wrapper over `deploy/services.sh`, which holds the one implementation so
CI, the Makefile and this command start the services the same way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer

app = typer.Typer(help="Postgres, the S3 server and the Docker engine on loopback.")

_SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "services.sh"
_NAMES_HELP = "Services to act on (postgres, s3, docker); all when omitted."


def _run(command: str, names: list[str] | None) -> None:
    if not _SCRIPT.is_file():
        raise typer.BadParameter(
            f"{_SCRIPT} not found: `rayline services` runs from a source checkout "
            "(clone the repository and run `make demo` or `make test`)"
        )
    result = subprocess.run([str(_SCRIPT), command, *(names or [])], check=False)
    raise typer.Exit(result.returncode)


@app.command("up")
def up(names: list[str] | None = typer.Argument(None, help=_NAMES_HELP)) -> None:
    """Install if needed and start the services; wait until each answers."""
    _run("up", names)


@app.command("down")
def down(names: list[str] | None = typer.Argument(None, help=_NAMES_HELP)) -> None:
    """Stop the services this project started (and nothing else)."""
    _run("down", names)


@app.command("status")
def status(names: list[str] | None = typer.Argument(None, help=_NAMES_HELP)) -> None:
    """Report whether each service answers."""
    _run("status", names)
