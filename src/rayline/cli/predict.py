"""`rayline predict NAME --json ...`: ask a served model, found through service discovery."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from rayline.cli.deploy import failures

__all__ = ["predict_command"]

console = Console()


def _payload(text: str) -> Any:
    """The request document: inline JSON, ``@FILE``, or ``-`` for standard input."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    try:
        return json.loads(text)
    except ValueError as err:
        raise typer.BadParameter(f"--json is not valid JSON ({err})") from None


def predict_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    payload: Annotated[
        str,
        typer.Option(
            "--json",
            help='{"instances": [[...]]} or {"inputs": {feature: [...]}}; @FILE or - for stdin.',
        ),
    ],
    version: Annotated[
        int | None, typer.Option(min=1, help="Refuse an endpoint serving another version.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Endpoint URL (default: ask the Cluster Manager).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait.")] = 30.0,
) -> None:
    """Send a prediction request to a live endpoint of MODEL and print the answer."""
    import httpx

    from rayline.clusters.client import ClusterManagerClient
    from rayline.serving.client import PredictionClient, predict_at

    document = _payload(payload)
    with failures():
        if url is not None:
            with httpx.Client(timeout=timeout) as http:
                answer = predict_at(http, url.rstrip("/"), model, document, version=version)
        else:
            with (
                ClusterManagerClient() as manager,
                PredictionClient(manager, timeout=timeout) as client,
            ):
                answer = client.predict(model, document, version=version)
    console.print_json(json.dumps(answer))
