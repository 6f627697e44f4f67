"""The full local stack end to end: `rayline stack up`, `workflow run`, `stack down`.

Every command runs both ways a user runs it: in a plain shell, and in one that
sourced the stack's ``stack.env`` (which moves ``RAYLINE_HOME`` to the stack's
manager home), and both find the same stack.

Real services (the Postgres, S3 server and Docker engine of `deploy/services.sh`,
already running: the stack finds them up and leaves them up), a real Cluster
Manager and a real Airflow 3 (api-server, scheduler with the LocalExecutor on
Postgres, dag-processor, triggerer) started by the stack in a temporary state dir
on ports of their own. The workflow is triggered through Airflow's REST API and
must end with a correct prediction and a complete run record; after ``down``
nothing of ours may be left: no process, no live cluster, no container.

Run it under the heavy-run lock (it starts Ray clusters):
``flock /tmp/rayline-heavy.lock uv run pytest tests/integration/stack -m "" -x -q``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import URL, create_engine, select, text

from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.enums import ClusterState, DeploymentStatus, WorkflowStatus
from rayline.metadata.models import Cluster, Deployment, ModelVersion, WorkflowRun
from rayline.stack.processes import session_members
from tests.integration.conftest import required_env
from tests.integration.manager import free_port
from tests.integration.resources import delete_bucket

pytestmark = pytest.mark.integration

COMPONENTS = (
    "cluster-manager",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


@dataclass
class StackUnderTest:
    env: dict[str, str]
    state_dir: Path
    metadata_url: URL
    model: str

    def rayline(
        self, *args: str, timeout: float = 900, sourced: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``rayline ARGS``; ``sourced``: in a shell that ran ``source stack.env`` first."""
        argv = [sys.executable, "-m", "rayline", *args]
        if sourced:
            script = 'source "$1" && shift && exec "$@"'
            argv = ["bash", "-c", script, "sh", str(self.state_dir / "stack.env"), *argv]
        done = subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        how = "(stack.env sourced) " if sourced else ""
        print(f"$ {how}rayline {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def pids(self) -> dict[str, int]:
        found = {}
        for name in COMPONENTS:
            path = self.state_dir / "run" / f"{name}.pid"
            if path.is_file():
                found[name] = int(json.loads(path.read_text())["pid"])
        return found


def _processes_with(marker: str) -> list[str]:
    """Live processes whose environment holds ``marker`` (the stack's own RAYLINE_HOME)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            continue
    return found


@pytest.fixture
def stack(pg_admin_url: URL, s3_client: Any, tmp_path: Path) -> Iterator[StackUnderTest]:
    """A stack of its own (state dir, ports, databases, bucket) on the running services."""
    docker_host = required_env("DOCKER_HOST")
    services_dir = os.environ.get("RAYLINE_SERVICES_DIR") or str(
        Path(docker_host.removeprefix("unix://")).parent.parent
    )
    s3_port = httpx.URL(required_env("RAYLINE_S3_ENDPOINT_URL")).port
    token = secrets.token_hex(4)
    # The default state dir under RAYLINE_HOME, as a user has it: no RAYLINE_STACK_DIR.
    home = tmp_path / "home"
    state_dir = home / "stack"
    env = {
        **{k: v for k, v in os.environ.items() if k != "RAYLINE_STACK_DIR"},
        "RAYLINE_HOME": str(home),
        "RAYLINE_SERVICES_DIR": services_dir,
        "RAYLINE_PG_PORT": str(pg_admin_url.port),
        "RAYLINE_S3_PORT": str(s3_port),
        "RAYLINE_STACK_MANAGER_PORT": str(free_port()),
        "RAYLINE_STACK_AIRFLOW_PORT": str(free_port()),
        "RAYLINE_STACK_DATABASE": f"rl_stack_{token}",
        "RAYLINE_STACK_AIRFLOW_DATABASE": f"af_stack_{token}",
        "RAYLINE_STACK_BUCKET": f"rl-stack-{token}",
        "RAYLINE_PROMETHEUS_PORT": str(free_port()),
        "RAYLINE_STACK_MLFLOW_PORT": str(free_port()),
        "RAYLINE_STACK_MLFLOW_DATABASE": f"mlf_stack_{token}",
        # Ray Serve on the serving cluster: no image build, no container.
        "RAYLINE_SERVING_MODE": "ray",
        "COLUMNS": "200",  # rich: one line per message
    }
    under_test = StackUnderTest(
        env=env,
        state_dir=state_dir,
        metadata_url=pg_admin_url.set(database=f"rl_stack_{token}"),
        model=f"iris-stack-{token}",
    )
    try:
        yield under_test
    finally:
        under_test.rayline("stack", "down", timeout=600)  # idempotent: after a failure too
        admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in (
                env["RAYLINE_STACK_DATABASE"],
                env["RAYLINE_STACK_AIRFLOW_DATABASE"],
                env["RAYLINE_STACK_MLFLOW_DATABASE"],
            ):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        bucket = env["RAYLINE_STACK_BUCKET"]
        if bucket in {b["Name"] for b in s3_client.list_buckets().get("Buckets", [])}:
            delete_bucket(s3_client, bucket)


def test_stack_runs_the_workflow_through_airflow_and_leaves_nothing(
    stack: StackUnderTest, tmp_path: Path
) -> None:
    up = stack.rayline("stack", "up")
    assert up.returncode == 0, up.stderr
    first_pids = stack.pids()
    assert set(first_pids) == set(COMPONENTS)
    secrets_text = (stack.state_dir / "secrets.json").read_text()
    for secret in json.loads(secrets_text).values():
        assert secret not in up.stdout + up.stderr  # never printed

    # Idempotent, and the same stack from a shell that sourced stack.env: nothing restarted.
    again = stack.rayline("stack", "up", sourced=True)
    assert again.returncode == 0, again.stderr
    assert stack.pids() == first_pids
    assert not (stack.state_dir / "home" / "stack").exists()  # no second stack under its home
    status = stack.rayline("stack", "status", "--json")
    states = {row["name"]: row["state"] for row in json.loads(status.stdout)}
    sourced = stack.rayline("stack", "status", "--json", sourced=True)
    assert {row["name"]: row["state"] for row in json.loads(sourced.stdout)} == states
    assert states == {
        **{name: "up" for name in COMPONENTS},
        **{name: "external" for name in ("postgres", "s3", "docker")},  # up before the stack
        "prometheus": "up",  # started by the stack, scraping the stack manager's targets
        "mlflow": "up",  # the stack's tracking server, on its own database
    }

    spec = tmp_path / "train.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "spec_version": 1,
                "name": stack.model,
                "dataset": "sklearn:iris",
                "target": "target",
                "task": "classification",
                "framework": "sklearn",
                "hyperparameters": {"n_estimators": 20, "max_depth": 3},
                "workers": 1,
                "cpus_per_worker": 1,
                "seed": 3,
            }
        )
    )
    run = stack.rayline(
        "workflow", "run", str(spec), "--timeout", "900", timeout=1200, sourced=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the run succeeded" in run.stdout
    assert "prediction" in run.stdout
    # The stack's records from the sourced shell; the embedded (empty) ones without it.
    for command in (["models", "list"], ["workflow", "list"]):
        assert stack.rayline(*command, sourced=True).returncode == 0, command
        assert stack.rayline(*command).returncode == 0, command
    assert stack.rayline("clusters", "list", sourced=True).returncode == 0
    assert stack.model in stack.rayline("models", "list", sourced=True).stdout
    assert stack.model not in stack.rayline("models", "list").stdout

    engine = create_engine_for(stack.metadata_url.render_as_string(hide_password=False))
    try:
        with session_scope(engine) as session:
            record = session.scalars(select(WorkflowRun)).one()
            steps = {s.name: s for s in record.steps if s.status == WorkflowStatus.SUCCESS}
            assert record.status == WorkflowStatus.SUCCESS
            assert record.external_run_id in run.stdout
            assert {"train", "deploy", "verify_endpoint", "record_run"} <= set(steps)
            assert steps["train"].model_version_id is not None
            version = session.get(ModelVersion, steps["train"].model_version_id)
            assert version is not None
            tracked_run = version.mlflow_run_id  # the stack tracks every training run
            assert tracked_run, "the stack's training run was not tracked in MLflow"
            deployment = session.get(Deployment, steps["deploy"].deployment_id)
            assert deployment is not None
            assert deployment.model_name == stack.model
            endpoint = deployment.endpoint_url
        # The served model answers from here too: a setosa and a virginica.
        answer = httpx.post(
            f"{endpoint}/v1/models/{stack.model}:predict",
            json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert [int(p) for p in answer.json()["predictions"]] == [0, 2]

        mlflow_url = f"http://127.0.0.1:{stack.env['RAYLINE_STACK_MLFLOW_PORT']}"
        tracked = httpx.get(
            f"{mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": tracked_run}, timeout=30
        )
        assert tracked.status_code == 200, tracked.text
        assert tracked.json()["run"]["info"]["status"] == "FINISHED"

        down = stack.rayline("stack", "down", sourced=True)
        assert down.returncode == 0, down.stdout + down.stderr

        with session_scope(engine) as session:
            clusters = session.scalars(select(Cluster)).all()
            assert clusters
            assert all(c.state in (ClusterState.TERMINATED, ClusterState.FAILED) for c in clusters)
            deployments = session.scalars(select(Deployment)).all()
            assert all(d.status != DeploymentStatus.LIVE for d in deployments)
    finally:
        engine.dispose()
    for name, pid in first_pids.items():
        assert session_members(pid) == [], name
    assert _processes_with(f"RAYLINE_HOME={stack.state_dir / 'home'}") == []
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{endpoint}/v1/models/{stack.model}:predict", json={}, timeout=5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{mlflow_url}/health", timeout=5)  # stopped with the stack
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=rayline.model={stack.model}"],
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert containers.stdout.strip() == ""
    status = stack.rayline("stack", "status", "--json")
    states = {row["name"]: row["state"] for row in json.loads(status.stdout)}
    assert states == {
        **{name: "down" for name in COMPONENTS},
        **{name: "external" for name in ("postgres", "s3", "docker")},  # left running
        "prometheus": "down",
        "mlflow": "down",
    }
