"""Serving throughput and latency: bare FastAPI vs default Ray Serve vs our model container.

Same model (an XGBoost iris classifier in Rayline's artifact format), same
machine, same load: ``wrk`` with 16 connections sending single-row prediction
requests for a fixed duration, the three servers in turn (and in rounds, so a
busy host hurts all of them alike):

    (a) bare uvicorn + FastAPI calling the model in-process (one process);
    (b) a default Ray Serve deployment: one replica, no batching;
    (c) our model container, deployed by the real deploy job (Cluster Manager on
        SQLite, a serving Ray cluster, the Docker engine), found through service
        discovery.

All three parse and validate the request against the signature the same way
and call the same predictor. Printed: requests/s, p50, p99, errors, the ratios
(target: c >= 2 x b in requests/s with p99 no worse), model image build time
(cold: no image; warm: reused) and deploy time from job submit to the first
answered request.

    source "$(deploy/services.sh env-file)"   # DOCKER_HOST
    uv run python benchmarks/serving.py [--duration 20] [--rounds 2] [--replicas 1]

The serving base image must exist (``rayline images build-base``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from fastapi import Request  # module level: FastAPI resolves the handler's annotations here
from rich.console import Console
from rich.table import Table

console = Console()
app = typer.Typer(add_completion=False)

ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"instances": [ROW]})
MODEL = "bench-iris"
# Every container and image this run makes carries it; all are removed at the end.
BENCH_LABEL = f"rayline.bench={secrets.token_hex(4)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_model(directory: Path) -> None:
    """An XGBoost iris classifier written in Rayline's artifact layout."""
    import xgboost
    from sklearn.datasets import load_iris

    from rayline.training.artifacts import ModelBundle, write_artifacts
    from rayline.training.frameworks import LoopConfig
    from rayline.training.signature import Feature, Signature

    data = load_iris()
    names = [str(n) for n in data.feature_names]
    directory.mkdir(parents=True)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "seed": 0}
    booster = xgboost.train(params, xgboost.DMatrix(data.data, label=data.target), 50)
    booster.save_model(str(directory / "model.ubj"))
    signature = Signature(
        features=tuple(Feature(n, "double") for n in names),
        target="species",
        task="classification",
        target_type="int64",
        classes=(0, 1, 2),
    )
    loop = LoopConfig(names, "species", "classification", 3, {}, 1, 0, 1)
    write_artifacts(directory, ModelBundle(MODEL, "xgboost", "model.ubj", signature, loop))


# ------------------------------------------------------------------ servers (a) and (b)


def serve_bare(port: int, model_dir: str) -> None:
    """(a): uvicorn + FastAPI, the model called in the request handler."""
    # One OpenMP thread per model call, as Ray gives replicas of under one CPU:
    # a single-row prediction gains nothing from more and pays for their wake-ups.
    os.environ["OMP_NUM_THREADS"] = "1"
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from rayline.serving.errors import InvalidRequestError
    from rayline.serving.inputs import parse_body, to_matrix
    from rayline.serving.model import input_schema, load_predictor

    predictor = load_predictor(Path(model_dir))
    schema = input_schema(predictor)
    columns = list(schema.names)
    api = FastAPI()

    @api.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request) -> JSONResponse:
        try:
            matrix = to_matrix(parse_body(await request.body()), schema)
        except InvalidRequestError as err:
            return JSONResponse({"detail": str(err)}, status_code=err.status)
        rows = pd.DataFrame(matrix, columns=columns)
        return JSONResponse({"predictions": predictor.predict(rows), "model": name})

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_ray_default(port: int, model_dir: str, ports_json: str) -> None:
    """(b): a default Serve deployment (one replica, no batching) on a one-node Ray."""
    # Before Ray is imported: keep this driver on loopback, like the node (see ray_nodes).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import pandas as pd
    from ray import serve

    from rayline.clusters.backends.ray_nodes import PortPlan
    from rayline.serving.container import (
        ContainerRuntime,
        connect_driver,
        start_ray_node,
        stop_ray_node,
    )
    from rayline.serving.inputs import parse_body, to_matrix
    from rayline.serving.model import input_schema, load_predictor
    from rayline.serving.spec import ServingSpec

    @serve.deployment
    class Plain:
        def __init__(self, directory: str) -> None:
            self.predictor = load_predictor(Path(directory))
            self.schema = input_schema(self.predictor)
            self.columns = list(self.schema.names)

        async def __call__(self, request: Request) -> dict[str, Any]:
            matrix = to_matrix(parse_body(await request.body()), self.schema)
            rows = pd.DataFrame(matrix, columns=self.columns)
            return {"predictions": self.predictor.predict(rows)}

    runtime = ContainerRuntime(
        deployment_id="bench-baseline",
        host="127.0.0.1",
        port=port,
        ports=PortPlan.model_validate_json(ports_json),
        spec=ServingSpec(),
    )
    node = start_ray_node(runtime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        connect_driver(f"127.0.0.1:{runtime.ports.head.gcs}", node, stop)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        deployment: Any = Plain  # a serve.Deployment
        serve.run(deployment.bind(model_dir), route_prefix="/")
        stop.wait()
    finally:
        stop_ray_node(node)


@contextmanager
def server(args: list[str], port: int, url: str, workdir: Path) -> Iterator[str]:
    """Run this script as a server subprocess until ``url`` answers; stop it afterwards."""
    log = (workdir / f"server-{port}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_until_answers(url, timeout=240, process=process)
        except (RuntimeError, TimeoutError):
            console.print((workdir / f"server-{port}.log").read_text()[-3000:], markup=False)
            raise
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def wait_until_answers(
    url: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if httpx.post(url, content=BODY, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


# ------------------------------------------------------------------ load


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, *, duration: int, connections: int, workdir: Path) -> Load:
    """wrk with a POST script; parse requests/s, p50, p99 and the error counts."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return Load(rps, p50, p99, errors)


# ------------------------------------------------------------------ our stack (c)


@contextmanager
def manager(workdir: Path) -> Iterator[tuple[Any, Any]]:
    """A Cluster Manager on SQLite; yields its client and the submitter's settings."""
    from pydantic import SecretStr

    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings

    token, port = secrets.token_urlsafe(32), free_port()
    database_url = f"sqlite:///{workdir / 'meta.db'}"
    artifact_uri = (workdir / "artifacts").as_uri()
    env = {
        **os.environ,
        "RAYLINE_HOME": str(workdir / "home"),
        "RAYLINE_DATABASE_URL": database_url,
        "RAYLINE_ARTIFACT_URI": artifact_uri,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(port),
        "RAYLINE_LOCAL_PORT_RANGE_START": "20000",
        "RAYLINE_LOCAL_PORT_RANGE_END": "23000",
    }
    with (workdir / "manager.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rayline", "cluster-manager", "serve", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    settings = Settings(
        home=workdir / "home",
        database_url=database_url,
        artifact_uri=artifact_uri,
        cluster_manager_url=f"http://127.0.0.1:{port}",
        api_token=SecretStr(token),
        serving_mode="docker",
        serving_switch_grace_seconds=1,
        local_port_range_start=20000,
        local_port_range_end=23000,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Cluster Manager did not start; see manager.log")
            time.sleep(0.2)
        with ClusterManagerClient(settings.cluster_manager_url, token=token, timeout=70) as client:
            try:
                yield client, settings
            finally:
                for cluster in client.list_clusters().data:
                    if not cluster.state.is_terminal():
                        client.delete_cluster(cluster.id)
                for cluster in client.list_clusters().data:
                    if not cluster.state.is_terminal():
                        client.wait_for_state(cluster.id, state="TERMINATED", timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def base_image_report(settings: Any) -> str:
    """Build the serving base image if it is missing (timed), else note its reuse."""
    from rayline.serving.base_image import build_base_image
    from rayline.serving.docker_engine import docker_client

    started = time.monotonic()
    built = build_base_image(settings, docker_client(timeout=3600))
    seconds = time.monotonic() - started
    if built.reused:
        text = f"base image {built.tag}: exists, reused in {seconds:.1f}s"
    else:
        steps = ", ".join(f"{k} {v:.0f}s" for k, v in built.steps.items())
        text = f"base image {built.tag}: built in {seconds:.0f}s ({steps})"
    console.print(text)
    return text


def image_build_times(settings: Any, model_dir: Path, sha256: str) -> tuple[float, float]:
    """Model image build: cold (no image yet) and warm (reused)."""
    from rayline.serving.base_image import resolve_base_image
    from rayline.serving.container import ContainerConfig
    from rayline.serving.docker_engine import docker_client
    from rayline.serving.model import ServedModel
    from rayline.serving.model_image import build_model_image, model_image_tag
    from rayline.serving.spec import ServingSpec

    client = docker_client()
    served = ServedModel(name=MODEL, version=1, version_id="cold", sha256=sha256)
    config = ContainerConfig(served=served, spec=ServingSpec(), rayline_version="bench")
    timings = []
    for _ in range(2):
        image = build_model_image(
            client,
            base=resolve_base_image(settings),
            model_dir=model_dir,
            config_json=config.model_dump_json(),
            name=MODEL,
            version=1,
            sha256=sha256,
            labels=dict([BENCH_LABEL.split("=", 1)]),
        )
        timings.append(image.seconds)
    client.images.remove(model_image_tag(MODEL, 1), force=True)
    return timings[0], timings[1]


def deploy_and_time(
    client: Any, settings: Any, cluster: Any, extra: list[str]
) -> tuple[dict[str, Any], float]:
    """Run the deploy job; time from submit to the first answer of the new endpoint."""
    from rayline.clusters.errors import ClusterManagerError
    from rayline.jobs.client import JobClient
    from rayline.jobs.requests import DeployRequest
    from rayline.jobs.results import DeployResult

    def endpoints() -> set[str]:
        try:
            return {s.url for s in client.live_endpoints(MODEL).data}
        except ClusterManagerError:  # none registered yet
            return set()

    before = endpoints()
    started = time.monotonic()
    jobs = JobClient.for_cluster(cluster, client)
    request = DeployRequest.from_argv(
        ["--model", MODEL, "--cluster-id", cluster.id, "--label", BENCH_LABEL, *extra]
    )
    job_id = jobs.submit(request, settings=settings)
    first_answer = float("nan")
    with httpx.Client(timeout=10) as http:
        while time.monotonic() - started < 600:
            new = endpoints() - before
            try:
                if (
                    new
                    and http.post(
                        f"{new.pop()}/v1/models/{MODEL}:predict", content=BODY
                    ).status_code
                    == 200
                ):
                    first_answer = time.monotonic() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    outcome = jobs.follow(job_id, DeployResult, timeout=600)
    if outcome.result is None:
        raise RuntimeError(f"the deploy job failed: {outcome.describe_failure()}")
    return outcome.result.model_dump(mode="json"), first_answer


# ------------------------------------------------------------------ main


@app.command()
def main(
    duration: int = typer.Option(20, help="Seconds of load per system and round."),
    rounds: int = typer.Option(2, help="Rounds (a, b, c each); medians are reported."),
    connections: int = typer.Option(16, help="Concurrent connections."),
    replicas: int = typer.Option(1, help="Replicas of our deployment (c)."),
) -> None:
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk is not installed: apt-get install wrk")
    from rayline.clusters.backends.ports import PortAllocator
    from rayline.clusters.backends.ray_nodes import plan_ports, ports_needed
    from rayline.clusters.schemas import ClusterCreate, Purpose, ResourceSpec
    from rayline.metadata import ModelRegistry, create_engine_for
    from rayline.serving.spec import ServingSpec
    from rayline.storage import open_store, publish_version

    workdir = Path(tempfile.mkdtemp(prefix="rayline-bench-serving-"))
    results: dict[str, list[Load]] = {"a": [], "b": [], "c": []}
    try:
        model_dir = workdir / "model"
        make_model(model_dir)
        with manager(workdir) as (client, settings):
            engine = create_engine_for(settings.database_url)
            ref = publish_version(open_store(settings.artifact_uri, settings), MODEL, model_dir)
            ModelRegistry().register_version(
                engine,
                name=MODEL,
                artifact_uri=ref.uri,
                sha256=ref.manifest_sha256,
                framework="xgboost",
            )
            base = base_image_report(settings)
            cold, warm = image_build_times(settings, model_dir, ref.manifest_sha256)
            console.print(f"model image build: cold {cold:.1f}s, warm (reused) {warm:.2f}s")

            spec = ClusterCreate(
                name="bench-serving", purpose=Purpose.SERVING, head=ResourceSpec(cpus=2)
            )
            cluster = client.wait_until_ready(client.create_cluster(spec).id, timeout=600)
            serving = ServingSpec(num_replicas=replicas).model_dump_json()
            deployed, deploy_cold = deploy_and_time(client, settings, cluster, ["--spec", serving])
            console.print(
                f"deploy (cold image): {deploy_cold:.1f}s from job submit to first answer"
            )
            deployed, deploy_warm = deploy_and_time(client, settings, cluster, ["--spec", serving])
            console.print(f"deploy (warm image, zero-downtime switch): {deploy_warm:.1f}s")
            ours = f"{deployed['url']}/v1/models/{MODEL}:predict"

            allocator = PortAllocator(workdir / "ports", start=23000, end=26000, host="127.0.0.1")
            block = allocator.allocate("baseline", ports_needed(1, 100))
            plan = plan_ports(block, 1, 100).model_dump_json()
            for round_ in range(rounds):
                port_a, port_b = free_port(), free_port()
                url_a = f"http://127.0.0.1:{port_a}/v1/models/{MODEL}:predict"
                with server(["--serve-bare", str(port_a), str(model_dir)], port_a, url_a, workdir):
                    results["a"].append(
                        run_wrk(url_a, duration=duration, connections=connections, workdir=workdir)
                    )
                url_b = f"http://127.0.0.1:{port_b}/"
                with server(
                    ["--serve-ray", str(port_b), str(model_dir), plan], port_b, url_b, workdir
                ):
                    results["b"].append(
                        run_wrk(url_b, duration=duration, connections=connections, workdir=workdir)
                    )
                results["c"].append(
                    run_wrk(ours, duration=duration, connections=connections, workdir=workdir)
                )
                console.print(
                    f"round {round_ + 1}: "
                    + ", ".join(f"{k} {v[-1].rps:.0f} req/s" for k, v in results.items())
                )

            from rayline.jobs.requests import DeployRequest
            from rayline.jobs.serving import run_deploy

            request = DeployRequest(action="delete", model=MODEL, cluster_id=cluster.id)
            run_deploy(client, request, settings=settings)
            engine.dispose()
        report(results, cold=cold, warm=warm, deploy_cold=deploy_cold, deploy_warm=deploy_warm)
        console.print(base)
    finally:
        remove_bench_containers_and_images()
        shutil.rmtree(workdir, ignore_errors=True)


def remove_bench_containers_and_images() -> None:
    from rayline.serving.docker_engine import docker_client

    client = docker_client()
    for container in client.containers.list(all=True, filters={"label": BENCH_LABEL}):
        container.remove(force=True)
    for image in client.images.list(filters={"label": BENCH_LABEL}):
        client.images.remove(image.id, force=True)


def report(
    results: dict[str, list[Load]],
    *,
    cold: float,
    warm: float,
    deploy_cold: float,
    deploy_warm: float,
) -> None:
    names = {
        "a": "(a) uvicorn + FastAPI, in-process",
        "b": "(b) Ray Serve default (1 replica, no batching)",
        "c": "(c) Rayline model container",
    }
    med = {
        k: Load(
            statistics.median(x.rps for x in v),
            statistics.median(x.p50_ms for x in v),
            statistics.median(x.p99_ms for x in v),
            sum(x.errors for x in v),
        )
        for k, v in results.items()
    }
    table = Table(title="single-row predictions, 16 connections (medians over rounds)")
    for header in ("system", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(header)
    for key, load in med.items():
        table.add_row(
            names[key],
            f"{load.rps:.0f}",
            f"{load.p50_ms:.1f}",
            f"{load.p99_ms:.1f}",
            str(load.errors),
        )
    console.print(table)
    a, b, c = med["a"], med["b"], med["c"]
    console.print(
        f"(c)/(b) requests/s: {c.rps / b.rps:.2f}x (target >= 2.0); "
        f"p99 (c) {c.p99_ms:.1f} ms vs (b) {b.p99_ms:.1f} ms "
        f"({'no worse' if c.p99_ms <= b.p99_ms else 'WORSE'})"
    )
    console.print(
        f"(c)/(a) requests/s: {c.rps / a.rps:.2f}x; p99 (c)/(a): {c.p99_ms / a.p99_ms:.2f}x"
    )
    console.print(f"model image build: cold {cold:.1f}s, warm {warm:.2f}s")
    console.print(
        "deploy, job submit -> first answered request: "
        f"cold image {deploy_cold:.1f}s, warm {deploy_warm:.1f}s"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-ray":
        serve_ray_default(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        app()
