"""`rayline cluster-manager serve`: run the Cluster Manager API."""

from __future__ import annotations

import logging

import typer
import uvicorn
from rich.console import Console

from rayline.clusters.api.app import create_app
from rayline.clusters.auth import token_file
from rayline.config import UnsafeSettingsError, get_settings
from rayline.listeners import check_listeners

app = typer.Typer(help="The Ray Cluster Manager service.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="Listen address (default RAYLINE_API_HOST)."),
    port: int | None = typer.Option(None, help="Listen port (default RAYLINE_API_PORT)."),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Serve the API (OpenAPI at /docs) until interrupted; clusters outlive the process."""
    settings = get_settings()
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    try:
        check_listeners(settings, api_host=host)
    except UnsafeSettingsError as err:
        console.print(f"[red]refusing to start:[/] {err}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    if settings.api_token is None:
        console.print(
            f"[dim]no RAYLINE_API_TOKEN set: using the token in {token_file(settings)}[/]"
        )
    scheme = "https" if settings.tls_cert_file else "http"
    console.print(f"Cluster Manager on {scheme}://{bind_host}:{bind_port} (docs at /docs)")
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level=log_level,
        # Bounded work at once: beyond it uvicorn answers 503 instead of queueing.
        limit_concurrency=settings.api_limit_concurrency,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
