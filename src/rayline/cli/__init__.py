"""The `rayline` command line: thin commands on top of the library and its clients."""

from __future__ import annotations

import typer

from rayline.cli import (
    cluster_manager,
    clusters,
    config,
    db,
    demo,
    deploy,
    deployments,
    down,
    images,
    models,
    monitoring,
    predict,
    services,
    stack,
    train,
    workflow,
)

app = typer.Typer(
    name="rayline",
    help="Train and serve ML models on Ray clusters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(services.app, name="services")
app.add_typer(stack.app, name="stack")
app.add_typer(cluster_manager.app, name="cluster-manager")
app.add_typer(clusters.app, name="clusters")
app.add_typer(models.app, name="models")
app.add_typer(monitoring.app, name="monitoring")
app.add_typer(workflow.app, name="workflow")
app.add_typer(deployments.app, name="deployments")
app.add_typer(images.app, name="images")
app.command("train")(train.train)
app.command("deploy")(deploy.deploy_command)
app.command("predict")(predict.predict_command)
app.command("demo")(demo.run_demo)
app.command("down")(down.down)

__all__ = ["app"]
