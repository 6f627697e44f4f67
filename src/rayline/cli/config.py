"""`rayline config get|set|unset`: settings shared by every Cluster Manager replica.

They live in ZooKeeper (``RAYLINE_ZOOKEEPER_HOSTS``, znode ``<root>/config``);
each manager watches the znode and applies a change at once, without a restart.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from rayline.config import get_settings
from rayline.coordination import CoordinationUnavailableError
from rayline.coordination.paths import Paths
from rayline.coordination.shared_config import SharedConfig, read_shared, update_shared
from rayline.coordination.zookeeper import connect

app = typer.Typer(
    help="Settings shared by Cluster Manager replicas through ZooKeeper.", no_args_is_help=True
)
err = Console(stderr=True)
_KEYS = ", ".join(SharedConfig.names())


def _run(action: Any) -> Any:
    settings = get_settings()
    if not settings.zookeeper_hosts:
        err.print(
            "[red]RAYLINE_ZOOKEEPER_HOSTS is not set[/]: shared config needs ZooKeeper "
            "(deploy/zookeeper.sh up; then e.g. RAYLINE_ZOOKEEPER_HOSTS=127.0.0.1:52181). "
            "A single manager reads RAYLINE_* variables instead."
        )
        raise typer.Exit(2)
    try:
        client = connect(settings, wait=10)
    except CoordinationUnavailableError:
        err.print(f"[red]ZooKeeper at {settings.zookeeper_hosts} does not answer[/]")
        raise typer.Exit(1) from None
    try:
        return action(client, Paths(settings.zookeeper_root.rstrip("/") or "/rayline").config)
    finally:
        client.stop()
        client.close()


def _check_key(key: str) -> None:
    if key not in SharedConfig.names():
        raise typer.BadParameter(f"unknown key {key!r}; shared keys: {_KEYS}")


@app.command("get")
def get(key: str | None = typer.Argument(None, help=f"One of: {_KEYS}.")) -> None:
    """Print the shared settings (JSON), or one value."""
    if key is not None:
        _check_key(key)
    config: SharedConfig = _run(read_shared)
    values = config.model_dump(exclude_none=True)
    print(json.dumps(values.get(key) if key else values, indent=None if key else 2))


@app.command("set")
def set_(
    key: str = typer.Argument(..., help=f"One of: {_KEYS}."),
    value: str = typer.Argument(..., help="The new value (e.g. 3)."),
) -> None:
    """Set one shared setting; every manager applies it without a restart."""
    _check_key(key)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    try:
        config: SharedConfig = _run(lambda c, p: update_shared(c, p, {key: parsed}))
    except ValidationError as exc:
        raise typer.BadParameter(f"{key}={value!r}: {exc.errors()[0]['msg']}") from None
    print(json.dumps(config.model_dump(exclude_none=True), indent=2))


@app.command("unset")
def unset(key: str = typer.Argument(..., help=f"One of: {_KEYS}.")) -> None:
    """Remove one shared setting; managers fall back to their own value."""
    _check_key(key)
    config: SharedConfig = _run(lambda c, p: update_shared(c, p, {key: None}))
    print(json.dumps(config.model_dump(exclude_none=True), indent=2))
