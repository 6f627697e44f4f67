"""`rayline clusters ...`: request, inspect, await and delete Ray clusters.

Thin commands on `rayline.clusters.client.ClusterManagerClient`: one client
factory (`make_client`), one SDK call per command (plus the wait when asked),
and a one-line message with exit status 1 on any `ClusterManagerError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterManagerError
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterEventPublic,
    ClusterPublic,
    ClusterState,
    Purpose,
)

__all__ = ["app", "make_client"]

app = typer.Typer(
    help="Ray clusters from the Cluster Manager: create, list, get, wait, delete.",
    no_args_is_help=True,
)
console = Console()
# Progress and errors go to stderr so `--json` output stays parseable.
err_console = Console(stderr=True)

_STATE_STYLES = {
    ClusterState.PENDING: "yellow",
    ClusterState.PROVISIONING: "yellow",
    ClusterState.READY: "green",
    ClusterState.POOLED: "cyan",
    ClusterState.UNHEALTHY: "magenta",
    ClusterState.TERMINATING: "dim",
    ClusterState.TERMINATED: "dim",
    ClusterState.FAILED: "red",
}
# How often (at most) the wait spinner hears about state changes.
_PROGRESS_POLL_SECONDS = 5.0

TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0, help="Seconds to wait before giving up.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="KEY=VALUE; repeat for more labels.", show_default=False),
]


def make_client() -> ClusterManagerClient:
    """Return the client every command uses (address and token from the settings)."""
    return ClusterManagerClient()


@contextmanager
def _client() -> Iterator[ClusterManagerClient]:
    """Yield a client; turn any Cluster Manager error into one line and exit status 1."""
    try:
        with make_client() as client:
            yield client
    except ClusterManagerError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


# ------------------------------------------------------------------ commands
@app.command("create")
def create(
    name: Annotated[str | None, typer.Option(help="Cluster name (DNS label).")] = None,
    purpose: Annotated[Purpose | None, typer.Option(help="What the cluster is for.")] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="Number of worker nodes.")] = None,
    cpus: Annotated[float | None, typer.Option(min=0, help="CPUs of the head node.")] = None,
    worker_cpus: Annotated[float | None, typer.Option(min=0, help="CPUs per worker.")] = None,
    memory_mb: Annotated[
        int | None, typer.Option(min=64, help="Memory for Ray tasks per node, MiB.")
    ] = None,
    ttl: Annotated[int | None, typer.Option(min=1, help="Lifetime in seconds.")] = None,
    idle_timeout: Annotated[
        int | None, typer.Option(min=1, help="Delete after this many idle seconds.")
    ] = None,
    label: LabelOption = None,
    request_id: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key returns the same cluster.")
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="YAML or JSON ClusterCreate; options override it."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the cluster is READY.")] = True,
    timeout: TimeoutOption = 600,
    json_output: JsonOption = False,
) -> None:
    """Request a Ray cluster and (by default) wait until it is READY."""
    request = _build_spec(
        spec,
        name=name,
        purpose=purpose,
        worker_count=workers,
        head_cpus=cpus,
        worker_cpus=worker_cpus,
        memory_mb=memory_mb,
        ttl_seconds=ttl,
        idle_timeout_seconds=idle_timeout,
        labels=_parse_labels(label),
        request_id=request_id,
    )
    with _client() as client:
        cluster = client.create_cluster(request)
        if wait:
            cluster = _wait(client, cluster.id, ClusterState.READY, timeout)
        token_path = _token_path(client, cluster)
    if json_output:
        _print_json(cluster)
        return
    console.print(f"cluster [bold]{cluster.id}[/] ({escape(cluster.name)}) is {_state(cluster)}")
    _print_next_steps(cluster, token_path)


@app.command("list")
def list_(
    purpose: Annotated[Purpose | None, typer.Option(help="Only this purpose.")] = None,
    state: Annotated[ClusterState | None, typer.Option(help="Only this state.")] = None,
    label: LabelOption = None,
    json_output: JsonOption = False,
) -> None:
    """List clusters, newest first."""
    with _client() as client:
        clusters = client.list_clusters(purpose=purpose, state=state, labels=_parse_labels(label))
    if json_output:
        _print_json(clusters)
        return
    if not clusters.data:
        console.print("no clusters match")
        return
    table = Table()
    # Ids and URLs get copied: keep ids on one line and fold, never cut, the rest.
    table.add_column("ID", no_wrap=True, min_width=max(len(c.id) for c in clusters.data))
    for header in ("NAME", "PURPOSE", "STATE", "WORKERS", "CREATED", "JOB API"):
        table.add_column(header, overflow="fold")
    for c in clusters.data:
        table.add_row(
            Text(c.id),
            Text(c.name),
            c.purpose.value,
            _state(c),
            str(c.worker_count),
            _when(c.created_at),
            Text(c.job_api_url or "-"),
        )
    console.print(table)


@app.command("get")
def get(
    cluster_id: Annotated[str, typer.Argument(help="Cluster id.")],
    json_output: JsonOption = False,
) -> None:
    """Show one cluster: state, addresses, nodes."""
    with _client() as client:
        cluster = client.get_cluster(cluster_id)
    if json_output:
        _print_json(cluster)
        return
    console.print(_cluster_table(cluster))
    if cluster.nodes:
        console.print(_nodes_table(cluster))


@app.command("events")
def events(cluster_id: Annotated[str, typer.Argument(help="Cluster id.")]) -> None:
    """Show the cluster's state transitions, oldest first, with reasons."""
    with _client() as client:
        rows = client.cluster_events(cluster_id)
    console.print(_events_table(cluster_id, rows))


@app.command("delete")
def delete(
    cluster_id: Annotated[str, typer.Argument(help="Cluster id.")],
    wait: Annotated[bool, typer.Option(help="Wait until it is TERMINATED.")] = False,
    timeout: TimeoutOption = 300,
) -> None:
    """Tear a cluster down (deleting an ending cluster is a no-op)."""
    with _client() as client:
        cluster = client.delete_cluster(cluster_id)
        if wait and not cluster.state.is_terminal():
            cluster = _wait(client, cluster_id, ClusterState.TERMINATED, timeout)
    console.print(f"cluster [bold]{cluster.id}[/] is {_state(cluster)}")


@app.command("wait")
def wait(
    cluster_id: Annotated[str, typer.Argument(help="Cluster id.")],
    state: Annotated[ClusterState, typer.Option(help="State to wait for.")] = ClusterState.READY,
    timeout: TimeoutOption = 600,
) -> None:
    """Wait until a cluster reaches a state; exit 1 if it fails or time runs out."""
    with _client() as client:
        cluster = _wait(client, cluster_id, state, timeout)
        token_path = _token_path(client, cluster)
    console.print(f"cluster [bold]{cluster.id}[/] is {_state(cluster)}")
    if cluster.state == ClusterState.READY:
        _print_next_steps(cluster, token_path)


# ------------------------------------------------------------------ helpers
def _wait(
    client: ClusterManagerClient, cluster_id: str, state: ClusterState, timeout: float
) -> ClusterPublic:
    """Wait with a spinner that shows the cluster's current state and reason."""
    with err_console.status(f"waiting for cluster {cluster_id} to be {state}") as status:

        def report(cluster: ClusterPublic) -> None:
            reason = f": {escape(cluster.reason)}" if cluster.reason else ""
            status.update(f"cluster {cluster_id} is {_state(cluster)}{reason}; waiting for {state}")

        try:
            return client.wait_until(
                cluster_id,
                state=state,
                timeout=timeout,
                on_poll=report,
                poll_timeout=_PROGRESS_POLL_SECONDS,
            )
        except KeyboardInterrupt:
            # Only the waiting stops; say so, or people think the cluster is gone.
            err_console.print(
                f"stopped waiting; cluster {cluster_id} carries on: "
                f"`rayline clusters wait {cluster_id}` or `rayline clusters delete {cluster_id}`",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None


def _build_spec(spec_file: Path | None, *, labels: dict[str, str], **options: Any) -> ClusterCreate:
    """Merge the spec file with the options given on the command line."""
    data = _load_spec_file(spec_file) if spec_file else {}
    head = dict(data.get("head") or {})
    worker = dict(data.get("worker") or {})
    if (cpus := options.pop("head_cpus")) is not None:
        head["cpus"] = cpus
    if (cpus := options.pop("worker_cpus")) is not None:
        worker["cpus"] = cpus
    if (memory := options.pop("memory_mb")) is not None:
        head["memory_mb"] = worker["memory_mb"] = memory
    data.update({k: v for k, v in options.items() if v is not None})
    if head:
        data["head"] = head
    if worker:
        data["worker"] = worker
    if labels:
        data["labels"] = {**(data.get("labels") or {}), **labels}
    try:
        return ClusterCreate.model_validate(data)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(f"invalid cluster spec: {problems}") from None


def _load_spec_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold a mapping of ClusterCreate fields")
    return data


def _parse_labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"label {value!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = val
    return labels


def _token_path(client: ClusterManagerClient, cluster: ClusterPublic) -> str | None:
    """The READY cluster's Ray token file, for Ray's own CLI on this machine."""
    ready = cluster.state == ClusterState.READY
    return client.cluster_credentials(cluster.id).ray_auth_token_path if ready else None


def _print_next_steps(cluster: ClusterPublic, token_path: str | None = None) -> None:
    cid = cluster.id
    if cluster.state == ClusterState.READY:
        address = cluster.job_api_url or "<job_api_url>"
        auth = f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={token_path} " if token_path else ""
        steps = [
            f"{auth}ray job submit --address {address} --working-dir . -- python train.py",
            f"rayline clusters get {cid}",
            f"rayline clusters delete {cid}",
        ]
    elif cluster.state.is_terminal():
        steps = [f"rayline clusters events {cid}"]
    else:
        steps = [f"rayline clusters wait {cid}", f"rayline clusters get {cid}"]
    console.print("\n[bold]Next steps:[/]")
    for step in steps:
        console.print(f"  {escape(step)}", soft_wrap=True)


def _print_json(model: BaseModel) -> None:
    # Plain print: rich would re-wrap and highlight what scripts want verbatim.
    typer.echo(model.model_dump_json(indent=2))


def _state(cluster: ClusterPublic) -> str:
    style = _STATE_STYLES.get(cluster.state, "")
    return f"[{style}]{cluster.state.value}[/]" if style else cluster.state.value


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _cluster_table(c: ClusterPublic) -> Table:
    table = Table(title=f"cluster {c.id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("name", Text(c.name)),
        ("purpose", c.purpose.value),
        ("state", _state(c)),
        ("reason", Text(c.reason or "-")),
        ("backend", Text(c.backend)),
        ("head address", Text(c.head_address or "-")),
        ("dashboard", Text(c.dashboard_url or "-")),
        ("job API", Text(c.job_api_url or "-")),
        ("workers", str(c.worker_count)),
        ("labels", Text(", ".join(f"{k}={v}" for k, v in c.labels.items()) or "-")),
        ("ttl", f"{c.ttl_seconds} s"),
        ("idle timeout", f"{c.idle_timeout_seconds} s" if c.idle_timeout_seconds else "-"),
        ("request id", Text(c.request_id or "-")),
        ("created", _when(c.created_at)),
        ("ready", _when(c.ready_at)),
        ("terminated", _when(c.terminated_at)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _nodes_table(c: ClusterPublic) -> Table:
    table = Table("ROLE", "NODE ID", "ALIVE", "RESOURCES", title="nodes", title_justify="left")
    for node in c.nodes:
        resources = ", ".join(_resource(k, v) for k, v in sorted(node.resources.items()))
        table.add_row(
            node.role,
            Text(node.node_id or "-", overflow="fold"),
            "[green]yes[/]" if node.alive else "[red]no[/]",
            Text(resources or "-", overflow="fold"),
        )
    return table


def _resource(name: str, amount: float) -> str:
    # Ray counts memory in bytes; GiB reads better.
    if name in ("memory", "object_store_memory"):
        return f"{name}={amount / 2**30:.1f}GiB"
    return f"{name}={amount:g}"


def _events_table(cluster_id: str, rows: list[ClusterEventPublic]) -> Table:
    table = Table(
        "TIME", "FROM", "TO", "REASON", title=f"cluster {cluster_id} events", title_justify="left"
    )
    for e in rows:
        table.add_row(
            _when(e.created_at),
            e.from_state.value if e.from_state else "-",
            e.to_state.value,
            Text(e.reason or "-"),
        )
    return table
