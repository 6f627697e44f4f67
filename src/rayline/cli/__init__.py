"""The `rayline` command line: thin commands on top of the library and its clients.

Each command's module is imported only when the command runs (`rayline.cli.lazy`),
so ``rayline --help`` and the light commands start at once. Add a command here:
its import path and the one-line help ``rayline --help`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import typer

from rayline.cli.lazy import LazyCommand, LazyGroup

__all__ = ["COMMANDS", "app"]

#: Every `rayline` subcommand: its name, ``"module:attribute"`` and one-line help.
COMMANDS: Mapping[str, LazyCommand] = {
    "train": LazyCommand(
        "rayline.cli.train:train",
        "Train SPEC on a Ray cluster and register the new model version.",
    ),
    "deploy": LazyCommand(
        "rayline.cli.deploy:deploy_command",
        "Deploy a model version; a live older version keeps serving until the new one answers.",
    ),
    "predict": LazyCommand(
        "rayline.cli.predict:predict_command",
        "Send a prediction request to a live endpoint of MODEL and print the answer.",
    ),
    "demo": LazyCommand(
        "rayline.cli.demo:run_demo",
        "Train a model, serve it and query it, all on the embedded defaults.",
    ),
    "down": LazyCommand(
        "rayline.cli.down:down",
        "Stop live deployments, delete every live cluster, stop the background Cluster Manager.",
    ),
    "db": LazyCommand("rayline.cli.db:app", "Metadata store (SQLite or Postgres) migrations."),
    "config": LazyCommand(
        "rayline.cli.config:app", "Settings shared by Cluster Manager replicas through ZooKeeper."
    ),
    "services": LazyCommand(
        "rayline.cli.services:app", "Postgres, the S3 server and the Docker engine on loopback."
    ),
    "stack": LazyCommand(
        "rayline.cli.stack:app", "The full local stack: services, Cluster Manager, Airflow."
    ),
    "cluster-manager": LazyCommand(
        "rayline.cli.cluster_manager:app", "The Ray Cluster Manager service."
    ),
    "clusters": LazyCommand(
        "rayline.cli.clusters:app",
        "Ray clusters from the Cluster Manager: create, list, get, wait, delete.",
    ),
    "models": LazyCommand(
        "rayline.cli.models:app", "Registered models: list them, show a version."
    ),
    "monitoring": LazyCommand(
        "rayline.cli.monitoring:app",
        "Prometheus on loopback, scraping the targets the Cluster Manager writes.",
    ),
    "workflow": LazyCommand(
        "rayline.cli.workflow:app",
        "Workflow runs: run one on the stack's Airflow, list them, show one with its steps.",
    ),
    "deployments": LazyCommand(
        "rayline.cli.deployments:app", "Served models: list, show, rollback, delete, watch."
    ),
    "images": LazyCommand(
        "rayline.cli.images:app", "Serving images: build the base image, list model images."
    ),
}


class _Rayline(LazyGroup):
    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = COMMANDS


app = typer.Typer(
    name="rayline",
    cls=_Rayline,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)


@app.callback()
def main() -> None:
    """Train and serve ML models on Ray clusters."""
