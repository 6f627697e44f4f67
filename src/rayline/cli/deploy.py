"""`rayline deploy NAME[:VERSION|@ALIAS]`: serve a model version, switching without downtime.

By default the deploy job runs on a serving cluster from the Cluster Manager (a
READY one, else a new one); ``--local`` runs it in this process instead (Docker
mode, or Ray mode with ``RAY_ADDRESS`` set). The commands of `rayline
deployments` that change something (rollback, delete) use the same path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from rayline.clusters.errors import ClusterManagerError
from rayline.metadata import MetadataError
from rayline.serving.errors import ServingError
from rayline.serving.spec import ServingSpec
from rayline.storage import StorageError

__all__ = ["deploy_command", "failures", "print_deployment", "run_action", "spec_from_options"]

console = Console()
err_console = Console(stderr=True)

ClusterOption = Annotated[
    str | None,
    typer.Option("--cluster-id", help="Serving cluster to run on (default: a READY one, or new)."),
]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Run here instead of as a Ray job on a serving cluster.")
]
PortOption = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Port to serve on (default: a free one).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@contextmanager
def failures() -> Iterator[None]:
    """Turn any Rayline error into one line on stderr and exit status 1."""
    try:
        yield
    except (
        ServingError,
        MetadataError,
        ClusterManagerError,
        StorageError,
        ValidationError,
        LookupError,
    ) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None


def spec_from_options(spec_file: Path | None, **options: Any) -> ServingSpec:
    """The serving spec: the YAML/JSON file, overridden by the options that were given."""
    data: dict[str, Any] = {}
    if spec_file is not None:
        loaded = yaml.safe_load(spec_file.read_text())
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{spec_file} does not hold a mapping of spec fields")
        data.update(loaded)
    data.update({k: v for k, v in options.items() if v is not None})
    return ServingSpec.model_validate(data)


def run_action(
    args: list[str], *, cluster_id: str | None, local: bool, mode: str | None = None
) -> dict[str, Any]:
    """Run ``rayline.jobs.deploy ARGS`` as a Ray job (or here with ``local``).

    Returns:
        The job's result document.

    Raises:
        typer.Exit: The job failed; its error was printed.
    """
    full = [*args, *(["--mode", mode] if mode else [])]
    if local:
        return _run_here(full, cluster_id)
    from rayline.clusters.client import ClusterManagerClient
    from rayline.serving.submit import run_deploy_job

    with ClusterManagerClient() as manager:
        outcome = run_deploy_job(
            manager,
            full,
            cluster_id=cluster_id,
            on_output=lambda text: err_console.print(text, end="", markup=False, highlight=False),
        )
    if outcome.result is None:
        error = outcome.job.error or {}
        message = error.get("message") or outcome.job.describe_failure()
        err_console.print(f"[red]error:[/] {escape(str(message))}", soft_wrap=True)
        raise typer.Exit(1)
    return outcome.result


def _run_here(args: list[str], cluster_id: str | None) -> dict[str, Any]:
    import contextlib
    import io

    from rayline.jobs.deploy import main as job_main
    from rayline.training.outcome import ERROR_MARKER, RESULT_MARKER, find_marker

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = job_main([*args, *(["--cluster-id", cluster_id] if cluster_id else [])])
    output = buffer.getvalue()
    for line in output.splitlines():
        if not line.startswith((RESULT_MARKER, ERROR_MARKER)):
            err_console.print(line, markup=False, highlight=False)
    result = find_marker(output, RESULT_MARKER)
    if status != 0 or result is None:
        error = find_marker(output, ERROR_MARKER) or {}
        message = error.get("message", f"the deploy ended with status {status}")
        err_console.print(f"[red]error:[/] {escape(str(message))}", soft_wrap=True)
        raise typer.Exit(1)
    return result


def print_deployment(result: dict[str, Any], *, as_json: bool) -> None:
    """One line about a deployment (or its JSON), and how to use it."""
    if as_json:
        console.print_json(json.dumps(result))
        return
    where = f" at {result['url']}" if result.get("url") else ""
    image = f", image {result['image']}" if result.get("image") else ""
    console.print(
        f"deployment [bold]{result['deployment_id']}[/]: {escape(result['model'])} version "
        f"{result['version']} is {result['status']}{escape(where)} ({result['mode']}{image})",
        soft_wrap=True,
    )
    console.print(
        f"next: rayline predict {escape(result['model'])} --json '{{\"instances\": [[...]]}}'",
        soft_wrap=True,
    )


def deploy_command(
    model: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
    port: PortOption = None,
    cluster_id: ClusterOption = None,
    mode: Annotated[
        str | None, typer.Option(help="docker or ray (default: RAYLINE_SERVING_MODE).")
    ] = None,
    replicas: Annotated[int | None, typer.Option(min=1, help="Fixed replica count.")] = None,
    min_replicas: Annotated[int | None, typer.Option(min=0, help="Autoscaling minimum.")] = None,
    max_replicas: Annotated[
        int | None, typer.Option(min=1, help="Autoscaling maximum (turns autoscaling on).")
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(min=1, help="Rows per model call (dynamic batching).")
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="YAML/JSON ServingSpec; options win."),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="KEY=VALUE on what is created.")
    ] = None,
    local: LocalOption = False,
    json_output: JsonOption = False,
) -> None:
    """Deploy a model version; a live older version keeps serving until the new one answers."""
    if mode not in (None, "docker", "ray"):
        raise typer.BadParameter("--mode is docker or ray")
    with failures():
        serving = spec_from_options(
            spec,
            num_replicas=replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            max_batch_size=max_batch_size,
        )
        args = ["--model", model, "--spec", serving.model_dump_json()]
        if port is not None:
            args += ["--port", str(port)]
        for item in label or []:
            args += ["--label", item]
        result = run_action(args, cluster_id=cluster_id, local=local, mode=mode)
    print_deployment(result, as_json=json_output)
