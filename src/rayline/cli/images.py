"""`rayline images ...`: the serving images, built offline."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayline.cli.deploy import failures

__all__ = ["app"]

app = typer.Typer(
    help="Serving images: build the base image, list model images.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


@app.command("build-base")
def build_base(
    force: Annotated[bool, typer.Option(help="Rebuild even if the tag exists.")] = False,
    quiet: Annotated[bool, typer.Option(help="Only print the result.")] = False,
) -> None:
    """Build the serving base image: debootstrap + wheels, `docker build --network none`.

    The root file system and the wheels are cached under RAYLINE_CACHE_DIR, so a
    rebuild after a dependency change only downloads what changed.
    """
    from rayline.config import get_settings
    from rayline.serving.base_image import build_base_image
    from rayline.serving.docker_engine import docker_client

    def progress(line: str) -> None:
        if not quiet:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)

    settings = get_settings()
    with failures():
        report = build_base_image(
            settings, docker_client(timeout=3600), force=force, progress=progress
        )
    steps = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in report.steps.items())
    state = "reused" if report.reused else f"built in {report.seconds:.0f}s ({steps})"
    console.print(f"[bold]{escape(report.tag)}[/] {state}")
    if settings.serving_base_image and settings.serving_base_image != report.tag:
        console.print(
            f"note: RAYLINE_SERVING_BASE_IMAGE={escape(settings.serving_base_image)} is set, "
            "so model images use that one instead"
        )


@app.command("list")
def list_() -> None:
    """List the serving base images and model images in the local engine."""
    from rayline.serving.docker_engine import LABEL_PREFIX, docker_client

    with failures():
        images = docker_client().images.list(filters={"label": f"{LABEL_PREFIX}kind"})
    table = Table()
    for header in ("TAG", "KIND", "MODEL", "VERSION", "SHA256", "SIZE"):
        table.add_column(header, overflow="fold")
    for image in images:
        labels = image.labels or {}
        for tag in image.tags or ["<none>"]:
            table.add_row(
                tag,
                labels.get(f"{LABEL_PREFIX}kind", ""),
                labels.get(f"{LABEL_PREFIX}model", ""),
                labels.get(f"{LABEL_PREFIX}version", ""),
                labels.get(f"{LABEL_PREFIX}sha256", "")[:12],
                f"{image.attrs.get('Size', 0) / 1e6:.0f} MB",
            )
    console.print(table)
