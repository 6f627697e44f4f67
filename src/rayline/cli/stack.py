"""`rayline stack up|down|status`: the full local stack on loopback.

Postgres, the S3 server and the Docker engine (`deploy/services.sh`), the Cluster
Manager on Postgres and ``s3://`` artifacts, and Airflow 3 (api-server, scheduler
with the LocalExecutor, dag-processor, triggerer) with its database on the same
Postgres. State, logs and secrets live in ``$RAYLINE_STACK_DIR`` (default
``$RAYLINE_HOME/stack``); see `rayline.stack.config` for ports and names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from rayline.stack import Stack, StackConfig, StackError

__all__ = ["app", "load_stack"]

app = typer.Typer(
    help="The full local stack: services, Cluster Manager, Airflow.", no_args_is_help=True
)
console = Console()

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="The stack's state dir (default: $RAYLINE_STACK_DIR or $RAYLINE_HOME/stack).",
    ),
]


class _Steps:
    """Each step on its own line; a long step's output as one live line under a spinner."""

    def __init__(self) -> None:
        self._status: Status | None = None

    def step(self, line: str) -> None:
        self.close()
        console.print(f"• {escape(line)}")

    def detail(self, line: str) -> None:
        if self._status is None:
            self._status = console.status("", spinner="dots")
            self._status.start()
        self._status.update(f"  [dim]{escape(line.strip()[-150:])}[/]")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def load_stack(state_dir: Path | None = None, steps: _Steps | None = None) -> Stack:
    """The stack described by the environment, reporting its steps on the console."""
    steps = steps or _Steps()
    return Stack(StackConfig.from_env(state_dir), report=steps.step, detail=steps.detail)


@app.command("up")
def up(
    state_dir: StateDirOption = None,
    timeout: Annotated[
        float, typer.Option(min=10, help="Seconds each component may take to answer.")
    ] = 300,
    coordination: Annotated[
        bool,
        typer.Option(
            "--coordination",
            help="Also start ZooKeeper; the manager coordinates through it "
            "(RAYLINE_STACK_COORDINATION=1 does the same).",
        ),
    ] = False,
) -> None:
    """Start what is not running yet and wait until everything answers."""
    if coordination:
        os.environ["RAYLINE_STACK_COORDINATION"] = "1"
    steps = _Steps()
    stack = load_stack(state_dir, steps)
    try:
        stack.up(timeout=timeout)
    except (StackError, FileNotFoundError) as err:
        steps.close()
        console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(1) from err
    finally:
        steps.close()
    _print_status(stack)
    console.print(
        f"Airflow UI: {stack.config.airflow_url} (user admin, password in "
        f"{stack.config.state_dir / 'secrets.json'}); `source "
        f"{stack.config.state_dir / 'stack.env'}` points `rayline ...` at this stack."
    )


@app.command("down")
def down(
    state_dir: StateDirOption = None,
    keep_services: Annotated[
        bool, typer.Option(help="Leave Postgres, S3 and Docker running.")
    ] = False,
) -> None:
    """Delete the stack's deployments and clusters, then stop what the stack started."""
    stack = load_stack(state_dir)
    try:
        stack.down(keep_services=keep_services)
    except StackError as err:
        console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(1) from err
    console.print("stack down")


@app.command("status")
def status(
    state_dir: StateDirOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each component's state (up, starting, down; external: running, not ours), pid, URL."""
    stack = load_stack(state_dir)
    if json_output:
        typer.echo(json.dumps([dataclasses.asdict(row) for row in stack.status()], indent=2))
        return
    _print_status(stack)


def _print_status(stack: Stack) -> None:
    table = Table("COMPONENT", "STATE", "PID", "URL")
    style = {"up": "green", "external": "cyan", "starting": "yellow", "down": "red"}
    for row in stack.status():
        state = f"[{style.get(row.state, 'white')}]{row.state}[/]"
        table.add_row(row.name, state, str(row.pid or ""), row.url)
    console.print(table)
    console.print(f"logs: {stack.config.log_dir}")
