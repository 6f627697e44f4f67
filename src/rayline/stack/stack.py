"""The full local stack: services, Cluster Manager and Airflow, up, down and status.

``up`` starts, on loopback and in this order, what is not running yet:

1. Postgres, the S3 server and the Docker engine through `deploy/services.sh`
   (the stack remembers which of them it started: ``down`` stops only those);
2. our metadata database (migrated) and Airflow's database on that Postgres;
3. in Docker serving mode, the serving base image (built when missing);
4. the Cluster Manager, on Postgres and ``s3://`` artifacts;
5. Airflow 3: ``airflow db migrate``, then the api-server, scheduler
   (LocalExecutor), dag-processor and triggerer;
6. Prometheus, scraping the manager's targets (`rayline.stack.addons`); and,
   with coordination on, ZooKeeper before the manager, which then uses it;

each in its own session with a pid file and a log under the state dir, waiting
until each answers (and Airflow has parsed ``rayline_train_and_serve``). ``down``
deletes the deployments and live clusters of the stack first, then stops the
processes it started, then the services it started.
"""

from __future__ import annotations

import subprocess
import sys

from rayline.stack.addons import Addon, AddonError, mlflow, monitoring, zookeeper
from rayline.stack.airflow import ADMIN_USER, AirflowClient
from rayline.stack.airflow_components import AIRFLOW_COMPONENTS, DAG_ID, start_airflow
from rayline.stack.config import (
    Report,
    StackConfig,
    StackSecrets,
    load_secrets,
    read_services_env,
)
from rayline.stack.environment import process_environment, write_user_env
from rayline.stack.errors import StackError
from rayline.stack.processes import BackgroundProcess, answers, wait_until_ready
from rayline.stack.services import (
    SERVICES,
    create_databases,
    database_url,
    ensure_bucket,
    run_services_script,
    services_up,
)
from rayline.stack.serving_image import ensure_serving_base_image
from rayline.stack.state import StackState
from rayline.stack.status import ComponentStatus, stack_status

__all__ = ["DAG_ID", "SERVICES", "ComponentStatus", "Stack", "StackError"]

MANAGER = "cluster-manager"


def _quiet(_line: str) -> None:
    return None


class Stack:
    """One local stack, described by a `StackConfig`.

    Args:
        config: ports, paths and database names.
        report: called with one line per step (progress display).
        detail: called with each output line of a long step (an image build).
    """

    def __init__(
        self, config: StackConfig, report: Report = _quiet, detail: Report = _quiet
    ) -> None:
        self.config = config
        self.state = StackState(config.state_dir)
        self._report = report
        self._detail = detail

    # ------------------------------------------------------------ components
    def process(self, name: str) -> BackgroundProcess:
        """The background process ``name`` (``cluster-manager``, ``airflow-scheduler``...)."""
        return BackgroundProcess(name, self.config.run_dir, self.config.log_dir)

    def manager(self) -> BackgroundProcess:
        """The stack's Cluster Manager process."""
        return self.process(MANAGER)

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
        return database_url(self.config, self.config.database)

    def environment(self, secrets: StackSecrets) -> dict[str, str]:
        """The environment of every process of the stack (it holds secrets)."""
        return process_environment(self.config, secrets)

    def addons(self) -> list[Addon]:
        """The optional servers of this stack, in start order."""
        try:
            token = self.secrets().manager_token.get_secret_value()
        except FileNotFoundError:  # never up: nothing of ours runs, status only
            token = ""
        try:
            services = read_services_env(self.config.services_dir)
        except FileNotFoundError:  # services never started: status only
            services = {}
        found = [mlflow(self.config, services), monitoring(self.config, token)]
        # Started by an earlier `up --coordination`: still ours to report and stop.
        if self.config.coordination or "zookeeper" in self.state.started("addons"):
            found.insert(0, zookeeper(self.config))
        return found

    # ------------------------------------------------------------ up
    def up(self, *, timeout: float = 300) -> None:
        """Start every component that does not run yet and wait until each answers.

        Raises:
            StackError: a component did not come up in ``timeout`` seconds (each),
                or the serving base image is missing and cannot be built.
        """
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.config.state_dir.chmod(0o700)
        secrets = load_secrets(self.config.state_dir)
        self._up_services()
        create_databases(self.config, self._report)
        from rayline.metadata.migrate import upgrade

        self._report("migrating the metadata database")
        upgrade(self.metadata_url())
        env = self.environment(secrets)
        ensure_serving_base_image(env, self._report, self._detail)
        if self.config.coordination:
            self.up_addon(zookeeper(self.config), required=True)
        write_user_env(self.config, env)
        ensure_bucket(self.config, env, self._report)
        # Before the manager and Airflow: the stack's training runs must be tracked.
        services = read_services_env(self.config.services_dir)
        self.up_addon(mlflow(self.config, services), required=True)
        manager = self.manager()
        if manager.pid() is None:
            self._report(f"starting the Cluster Manager on {self.config.manager_url}")
            manager.start(
                [sys.executable, "-m", "rayline", "cluster-manager", "serve"],
                env,
                cwd=self.config.state_dir,
            )
        wait_until_ready(manager, timeout, lambda: answers(f"{self.config.manager_url}/healthz"))
        start_airflow(self.config, secrets, env, self.process, timeout=timeout, report=self._report)
        token = secrets.manager_token.get_secret_value()
        self.up_addon(monitoring(self.config, token), required=False)
        self._report("stack up")

    def up_addon(self, addon: Addon, *, required: bool) -> None:
        """Start ``addon`` unless it runs; remember it was ours. Optional ones only warn."""
        if addon.is_up():
            return
        self._report(f"starting {addon.name} on {addon.url}")
        try:
            addon.run("up")
        except AddonError as err:
            if required:
                raise StackError(str(err)) from err
            self._report(f"warning: {addon.name} not started: {err}")
            return
        self.state.add_started("addons", [addon.name])

    def _up_services(self) -> None:
        missing = [name for name in SERVICES if name not in services_up(self.config)]
        if missing:
            self._report(f"starting services: {', '.join(missing)}")
            run_services_script(self.config, "up", *SERVICES)
            after = services_up(self.config)
            if not_up := [name for name in SERVICES if name not in after]:
                raise StackError(f"services did not come up: {', '.join(not_up)}")
        self.state.add_started("services", missing)

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
        for addon in self.addons():
            if addon.name in self.state.started("addons"):
                try:
                    addon.run("down")
                    self._report(f"stopped {addon.name}")
                except AddonError as err:
                    problems.append(str(err))
        self.state.clear_started("addons")
        started = [name for name in SERVICES if name in self.state.started("services")]
        if started and not keep_services:
            self._report(f"stopping services the stack started: {', '.join(started)}")
            run_services_script(self.config, "down", *started)
            self.state.clear_started("services")
        if problems:
            raise StackError("; ".join(problems))

    def _delete_workloads(self) -> None:
        """`rayline down` against the stack's manager: deployments, then live clusters."""
        if self.manager().pid() is None or not answers(f"{self.config.manager_url}/healthz"):
            return
        self._report("deleting the stack's deployments and clusters (`rayline down`)")
        # Its own background manager is not ours: pid file under the stack's RAYLINE_HOME.
        done = subprocess.run(
            [sys.executable, "-m", "rayline", "down"],
            env=self.environment(self.secrets()),
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
        return stack_status(self)
