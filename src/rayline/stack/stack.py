"""The full local stack: services, Cluster Manager and Airflow, up, down and status.

``up`` starts, on loopback and in this order, what is not running yet:

1. Postgres, the S3 server and the Docker engine through `deploy/services.sh`
   (the stack remembers which of them it started: ``down`` stops only those);
2. our metadata database (migrated) and Airflow's database on that Postgres;
3. the Cluster Manager, on Postgres and ``s3://`` artifacts;
4. Airflow 3: ``airflow db migrate``, then the api-server, scheduler
   (LocalExecutor), dag-processor and triggerer;
5. Prometheus, scraping the manager's targets (`rayline.stack.addons`); and,
   with coordination on, ZooKeeper before the manager, which then uses it;

each in its own session with a pid file and a log under the state dir, waiting
until each answers (and Airflow has parsed ``rayline_train_and_serve``). ``down``
deletes the deployments and live clusters of the stack first, then stops the
processes it started, then the services it started.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import URL, Engine, create_engine, make_url, text

from rayline.orchestration.dags import DAGS_FOLDER
from rayline.orchestration.embedded import rayline_connection_environment
from rayline.stack import addons
from rayline.stack.airflow import ADMIN_USER, AirflowClient, write_airflow_config
from rayline.stack.config import (
    SERVICES_SCRIPT,
    StackConfig,
    StackSecrets,
    load_secrets,
    read_services_env,
    write_private,
)
from rayline.stack.processes import BackgroundProcess

__all__ = ["DAG_ID", "SERVICES", "ComponentStatus", "Stack", "StackError"]

DAG_ID = "rayline_train_and_serve"
SERVICES = ("postgres", "s3", "docker")
MANAGER = "cluster-manager"
#: Airflow's long-running components, in start order; the key is their health entry.
AIRFLOW_COMPONENTS = {
    "airflow-api-server": "metadatabase",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag_processor",
    "airflow-triggerer": "triggerer",
}
_AIRFLOW_ARGS = {
    "airflow-api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
    # Task and trigger logs are files the api-server reads itself: no log servers
    # (they would listen on every interface).
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}

Report = Callable[[str], None]


class StackError(RuntimeError):
    """A component did not start or stop; the message says which and shows its log."""


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``rayline stack status``."""

    name: str
    state: str  # up, down, starting, external (running, not started by the stack)
    url: str
    pid: int | None = None
    detail: str = ""


class Stack:
    """One local stack, described by a `StackConfig`.

    Args:
        config: ports, paths and database names.
        report: called with one line per step (progress display).
    """

    def __init__(self, config: StackConfig, report: Report = lambda _line: None) -> None:
        self.config = config
        self._report = report

    # ------------------------------------------------------------ components
    def process(self, name: str) -> BackgroundProcess:
        """The background process ``name`` (``cluster-manager``, ``airflow-scheduler``...)."""
        return BackgroundProcess(name, self.config.run_dir, self.config.log_dir)

    def secrets(self) -> StackSecrets:
        """The stack's secrets (FileNotFoundError before the first ``up``)."""
        return load_secrets(self.config.state_dir, create=False)

    def airflow_client(self, *, timeout: float = 30) -> AirflowClient:
        """A client of the stack's Airflow REST API, logged in as its admin."""
        return AirflowClient(
            self.config.airflow_url,
            ADMIN_USER,
            self.secrets().airflow_admin_password,
            timeout=timeout,
        )

    def metadata_url(self) -> str:
        """Our metadata database (with its password: never print it)."""
        return self._database_url(self.config.database)

    # ------------------------------------------------------------ up
    def up(self, *, timeout: float = 300) -> None:
        """Start every component that does not run yet and wait until each answers.

        Raises:
            StackError: a component did not come up in ``timeout`` seconds (each).
        """
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.config.state_dir.chmod(0o700)
        secrets = load_secrets(self.config.state_dir)
        self._up_services()
        self._create_databases()
        from rayline.metadata.migrate import upgrade

        self._report("migrating the metadata database")
        upgrade(self.metadata_url())
        if self.config.coordination:
            self._up_addon(addons.zookeeper(self.config), required=True)
        env = self._environment(secrets)
        self._write_user_env(env)
        self._ensure_bucket(env)
        manager = self.process(MANAGER)
        if manager.pid() is None:
            self._report(f"starting the Cluster Manager on {self.config.manager_url}")
            manager.start(
                [sys.executable, "-m", "rayline", "cluster-manager", "serve"],
                env,
                cwd=self.config.state_dir,
            )
        self._wait(manager, timeout, lambda: _answers(f"{self.config.manager_url}/healthz"))
        self._up_airflow(secrets, env, timeout)
        token = secrets.manager_token.get_secret_value()
        self._up_addon(addons.monitoring(self.config, token), required=False)
        self._report("stack up")

    def _up_addon(self, addon: addons.Addon, *, required: bool) -> None:
        """Start ``addon`` unless it runs; remember it was ours. Optional ones only warn."""
        if addon.is_up():
            return
        self._report(f"starting {addon.name} on {addon.url}")
        try:
            addon.run("up")
        except addons.AddonError as err:
            if required:
                raise StackError(str(err)) from err
            self._report(f"warning: {addon.name} not started: {err}")
            return
        state = self._state()
        started = sorted({*state.get("started_addons", []), addon.name})
        self._save_state({**state, "started_addons": started})

    def _up_services(self) -> None:
        before = self._services_up()
        missing = [name for name in SERVICES if name not in before]
        if missing:
            self._report(f"starting services: {', '.join(missing)}")
            self._services_script("up", *SERVICES)
            after = self._services_up()
            if not_up := [name for name in SERVICES if name not in after]:
                raise StackError(f"services did not come up: {', '.join(not_up)}")
        state = self._state()
        started = sorted(set(state.get("started_services", [])) | set(missing))
        self._save_state({**state, "started_services": started})

    def _up_airflow(self, secrets: StackSecrets, env: dict[str, str], timeout: float) -> None:
        write_airflow_config(
            self.config, secrets, self._database_url(self.config.airflow_database), DAGS_FOLDER
        )
        airflow = [sys.executable, "-m", "airflow"]
        if any(self.process(name).pid() is None for name in AIRFLOW_COMPONENTS):
            self._report("migrating Airflow's database")
            migrate = self.process("airflow-db-migrate")
            with migrate.log_file.open("ab") as log:
                done = subprocess.run(
                    [*airflow, "db", "migrate"],
                    env=env,
                    cwd=self.config.state_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    check=False,
                )
            if done.returncode != 0:
                raise StackError(f"airflow db migrate failed:\n{migrate.tail()}")
        for name in AIRFLOW_COMPONENTS:
            process = self.process(name)
            if process.pid() is None:
                self._report(f"starting {name}")
                args = [a.format(port=self.config.airflow_port) for a in _AIRFLOW_ARGS[name]]
                process.start([*airflow, *args], env, cwd=self.config.state_dir)
        with AirflowClient(
            self.config.airflow_url, ADMIN_USER, secrets.airflow_admin_password
        ) as client:
            for name, key in AIRFLOW_COMPONENTS.items():
                self._wait(self.process(name), timeout, partial(_component_healthy, client, key))
            self._report(f"waiting for Airflow to parse {DAG_ID}")
            self._wait(
                self.process("airflow-dag-processor"),
                timeout,
                lambda: client.get_dag(DAG_ID) is not None,
            )

    def _wait(self, process: BackgroundProcess, timeout: float, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if process.exited():
                raise StackError(f"{process.name} exited at start-up:\n{process.tail()}")
            time.sleep(0.5)
        raise StackError(
            f"{process.name} did not answer in {timeout:g}s (log: {process.log_file}):\n"
            f"{process.tail()}"
        )

    # ------------------------------------------------------------ down
    def down(self, *, keep_services: bool = False) -> None:
        """Delete the stack's deployments and clusters, stop its processes and services.

        Only what this stack started is stopped: its pid files name its processes,
        its state file the services it started.

        Raises:
            StackError: a cluster could not be deleted (processes are stopped anyway).
        """
        problems = []
        try:
            self._delete_workloads()
        except Exception as err:  # stop the processes anyway; say what was left
            problems.append(f"could not delete every deployment and cluster: {err}")
        for name in [*reversed(AIRFLOW_COMPONENTS), MANAGER]:
            if self.process(name).stop():
                self._report(f"stopped {name}")
        for addon in self._addons():
            if addon.name in self._state().get("started_addons", []):
                try:
                    addon.run("down")
                    self._report(f"stopped {addon.name}")
                except addons.AddonError as err:
                    problems.append(str(err))
        self._save_state({**self._state(), "started_addons": []})
        state = self._state()
        started = [name for name in SERVICES if name in state.get("started_services", [])]
        if started and not keep_services:
            self._report(f"stopping services the stack started: {', '.join(started)}")
            self._services_script("down", *started)
            self._save_state({**state, "started_services": []})
        if problems:
            raise StackError("; ".join(problems))

    def _delete_workloads(self) -> None:
        """`rayline down` against the stack's manager: deployments, then live clusters."""
        manager = self.process(MANAGER)
        if manager.pid() is None or not _answers(f"{self.config.manager_url}/healthz"):
            return
        self._report("deleting the stack's deployments and clusters (`rayline down`)")
        # Its own background manager is not ours: pid file under the stack's RAYLINE_HOME.
        done = subprocess.run(
            [sys.executable, "-m", "rayline", "down"],
            env=self._environment(self.secrets()),
            cwd=self.config.state_dir,
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        for line in done.stdout.splitlines():
            self._report(f"  {line}")
        from rayline.clusters.client import ClusterManagerClient

        token = self.secrets().manager_token
        with ClusterManagerClient(self.config.manager_url, token=token, max_retries=2) as client:
            live = [c.id for c in client.list_clusters().data if not c.state.is_terminal()]
        if done.returncode != 0 or live:
            raise StackError(f"clusters still live: {live}; {done.stderr[-1000:]}")

    # ------------------------------------------------------------ status
    def status(self) -> list[ComponentStatus]:
        """Each component's state and address."""
        services = self._services_up()
        started = set(self._state().get("started_services", []))
        rows = []
        addresses = {
            "postgres": f"postgresql://127.0.0.1:{self.config.pg_port}",
            "s3": f"http://127.0.0.1:{self.config.s3_port}",
            "docker": f"unix://{self.config.services_dir / 'docker' / 'docker.sock'}",
        }
        for name in SERVICES:
            state = "down"
            if name in services:
                state = "up" if name in started else "external"
            rows.append(ComponentStatus(name, state, addresses[name]))
        manager = self.process(MANAGER)
        rows.append(
            self._process_status(
                manager,
                self.config.manager_url,
                _answers(f"{self.config.manager_url}/healthz"),
            )
        )
        started_addons = set(self._state().get("started_addons", []))
        for addon in self._addons():
            state = "down"
            if addon.is_up():
                state = "up" if addon.name in started_addons else "external"
            rows.append(ComponentStatus(addon.name, state, addon.url))
        health = AirflowClient(self.config.airflow_url, ADMIN_USER, SecretStr("")).health()
        for name, key in AIRFLOW_COMPONENTS.items():
            url = self.config.airflow_url if name == "airflow-api-server" else ""
            rows.append(self._process_status(self.process(name), url, _healthy(health, key)))
        return rows

    @staticmethod
    def _process_status(process: BackgroundProcess, url: str, answers: bool) -> ComponentStatus:
        pid = process.pid()
        if pid is None:
            return ComponentStatus(process.name, "down", url, detail=str(process.log_file))
        return ComponentStatus(
            process.name, "up" if answers else "starting", url, pid, str(process.log_file)
        )

    # ------------------------------------------------------------ plumbing
    def _services_script(self, *args: str) -> str:
        env = {
            **os.environ,
            "RAYLINE_SERVICES_DIR": str(self.config.services_dir),
            "RAYLINE_PG_PORT": str(self.config.pg_port),
            "RAYLINE_S3_PORT": str(self.config.s3_port),
        }
        done = subprocess.run(
            [str(SERVICES_SCRIPT), *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise StackError(f"deploy/services.sh {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def _services_up(self) -> set[str]:
        out = self._services_script("status", *SERVICES)
        return {
            line.split(":", 1)[0]
            for line in out.splitlines()
            if line.split(": ", 1)[-1].startswith("up")
        }

    def _state(self) -> dict[str, Any]:
        path = self.config.state_dir / "stack.json"
        if not path.is_file():
            return {}
        state: dict[str, Any] = json.loads(path.read_text())
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        (self.config.state_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    def _admin_url(self) -> URL:
        url = read_services_env(self.config.services_dir)["RAYLINE_PG_URL"]
        return make_url(url)

    def _database_url(self, database: str) -> str:
        return self._admin_url().set(database=database).render_as_string(hide_password=False)

    @staticmethod
    @contextmanager
    def _engine(url: str | URL, **kwargs: Any) -> Iterator[Engine]:
        engine = create_engine(url, **kwargs)
        try:
            yield engine
        finally:
            engine.dispose()

    def _create_databases(self) -> None:
        wanted = [self.config.database, self.config.airflow_database]
        admin = self._engine(self._admin_url(), isolation_level="AUTOCOMMIT")
        with admin as engine, engine.connect() as connection:
            existing = set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
            for name in wanted:
                if name not in existing:
                    self._report(f"creating database {name}")
                    # A checked plain name (StackConfig): safe to quote in.
                    connection.execute(text(f'CREATE DATABASE "{name}"'))

    def _ensure_bucket(self, env: dict[str, str]) -> None:
        """Create the artifact bucket: Ray Train's storage refuses to create one."""
        from botocore.exceptions import ClientError

        from rayline.config import Settings
        from rayline.storage.s3_store import make_s3_client

        client = make_s3_client(
            Settings(
                s3_endpoint_url=env["RAYLINE_S3_ENDPOINT_URL"],
                s3_access_key_id=SecretStr(env["RAYLINE_S3_ACCESS_KEY_ID"]),
                s3_secret_access_key=SecretStr(env["RAYLINE_S3_SECRET_ACCESS_KEY"]),
            )
        )
        try:
            client.head_bucket(Bucket=self.config.bucket)
        except ClientError:
            self._report(f"creating bucket {self.config.bucket}")
            client.create_bucket(Bucket=self.config.bucket)

    def _addons(self) -> list[addons.Addon]:
        """The optional servers of this stack, in start order."""
        try:
            token = self.secrets().manager_token.get_secret_value()
        except FileNotFoundError:  # never up: nothing of ours runs, status only
            token = ""
        found = [addons.monitoring(self.config, token)]
        # Started by an earlier `up --coordination`: still ours to report and stop.
        if self.config.coordination or "zookeeper" in self._state().get("started_addons", []):
            found.insert(0, addons.zookeeper(self.config))
        return found

    def _environment(self, secrets: StackSecrets) -> dict[str, str]:
        """The environment of every process of the stack (it holds secrets)."""
        services = read_services_env(self.config.services_dir)
        token = secrets.manager_token.get_secret_value()
        ours = {
            "RAYLINE_HOME": str(self.config.rayline_home),
            "RAYLINE_DATABASE_URL": self.metadata_url(),
            "RAYLINE_ARTIFACT_URI": self.config.artifact_uri,
            "RAYLINE_S3_ENDPOINT_URL": services["RAYLINE_S3_ENDPOINT_URL"],
            "RAYLINE_S3_ACCESS_KEY_ID": services["RAYLINE_S3_ACCESS_KEY_ID"],
            "RAYLINE_S3_SECRET_ACCESS_KEY": services["RAYLINE_S3_SECRET_ACCESS_KEY"],
            "RAYLINE_API_HOST": "127.0.0.1",
            "RAYLINE_API_PORT": str(self.config.manager_port),
            "RAYLINE_CLUSTER_MANAGER_URL": self.config.manager_url,
            "RAYLINE_API_TOKEN": token,
            "DOCKER_HOST": services["DOCKER_HOST"],
            # Ray 2.60 turns token auth on when ~/.ray/auth_token exists; our probes carry none.
            "RAY_AUTH_MODE": "disabled",
            "AIRFLOW_HOME": str(self.config.airflow_home),
            "AIRFLOW_CONFIG": str(self.config.airflow_home / "airflow.cfg"),
            **rayline_connection_environment(self.config.manager_url, token),
        }
        if self.config.coordination:
            ours["RAYLINE_ZOOKEEPER_HOSTS"] = addons.zookeeper(self.config).url
        # The caller's Airflow settings (e.g. an embedded AIRFLOW_HOME) must not leak in.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return {**inherited, **ours, "PYTHONUNBUFFERED": "1"}

    def _write_user_env(self, env: dict[str, str]) -> None:
        """``stack.env`` (mode 600): `source` it to point `rayline ...` at this stack."""
        names = [k for k in env if k.startswith("RAYLINE_") or k == "DOCKER_HOST"]
        names += ["RAY_AUTH_MODE", "AIRFLOW_HOME", "AIRFLOW_CONFIG"]
        lines = [f"export {name}={shlex.quote(env[name])}" for name in sorted(set(names))]
        write_private(self.config.state_dir / "stack.env", "\n".join(lines) + "\n")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _component_healthy(client: AirflowClient, key: str) -> bool:
    return _healthy(client.health(), key)


def _healthy(health: dict[str, Any] | None, key: str) -> bool:
    if health is None:
        return False
    entry = health.get(key) or {}
    return bool(entry.get("status") == "healthy")
