"""`rayline demo`: the main job on the embedded defaults."""

from __future__ import annotations

import typer


def run_demo() -> None:
    """Run the train -> serve workflow on the embedded defaults."""
    raise typer.Exit(1)
