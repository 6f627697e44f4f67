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
from rayline.jobs.client import JobApiError
from rayline.jobs.requests import DeployRequest
from rayline.metadata import MetadataError
from rayline.serving.errors import ServingError
from rayline.serving.spec import ServingSpec, parse_model_ref
from rayline.storage import StorageError

__all__ = [
    "deploy_command",
    "failures",
    "parse_labels",
    "print_deployment",
    "run_action",
    "spec_from_options",
]

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
        JobApiError,
    ) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None


def parse_labels(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict."""
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--label {item!r} is not KEY=VALUE")
        labels[key] = value
    return labels


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


def run_action(request: DeployRequest, *, local: bool) -> dict[str, Any]:
    """Run the deploy job of ``request`` on a serving cluster (or here with ``local``).

    Returns:
        The job's result (a `DeployResult` or `DeleteResult`) as a dict.

    Raises:
        typer.Exit: The job failed; its error was printed.
    """
    if local:
        return _run_here(request)
    from rayline.clusters.client import ClusterManagerClient
    from rayline.jobs.serving import run_deploy

    with ClusterManagerClient() as manager:
        outcome = run_deploy(
            manager,
            request,
            on_output=lambda text: err_console.print(text, end="", markup=False, highlight=False),
        )
    if outcome.result is None:
        job = outcome.job
        message = job.error.message if job.error is not None else job.describe_failure()
        err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(1)
    return dict(outcome.result.model_dump(mode="json"))


def _run_here(request: DeployRequest) -> dict[str, Any]:
    import contextlib
    import io

    from rayline.jobs.client import result_type_of
    from rayline.jobs.deploy import main as job_main
    from rayline.jobs.output import ERROR_MARKER, RESULT_MARKER, read_output

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = job_main(request.to_argv())
    output = buffer.getvalue()
    for line in output.splitlines():
        if RESULT_MARKER not in line and ERROR_MARKER not in line:
            err_console.print(line, markup=False, highlight=False)
    read = read_output(output, result_type_of(request))
    if status != 0 or read.result is None:
        message = read.error.message if read.error else f"the deploy ended with status {status}"
        err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(1)
    return dict(read.result.model_dump(mode="json"))


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
        ref = parse_model_ref(model)
        request = DeployRequest(
            model=ref.name,
            version=ref.version,
            alias=ref.alias,
            port=port,
            cluster_id=cluster_id,
            mode=mode,  # type: ignore[arg-type]  # checked above
            spec=serving,
            labels=parse_labels(label or []),
        )
        result = run_action(request, local=local)
    print_deployment(result, as_json=json_output)
