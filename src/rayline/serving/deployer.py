"""Deploy, update, roll back and delete model deployments, without downtime.

A deploy resolves the version, fetches and verifies every file, starts the new
server (container or Serve app), waits until it answers, registers its
endpoint with the Cluster Manager, records it LIVE, and only then retires the
deployments of the same model it replaces: their endpoints are withdrawn, they
keep answering for a short grace period (clients that looked them up just
before the switch), then drain and stop. A new version that fails at any step
is stopped and recorded FAILED; what served before goes on serving. Concurrent
deploys of one model run one after the other (:mod:`rayline.serving.deploy_lock`).

Example:
    >>> deployer = Deployer(settings=settings, engine=engine, manager=client)  # doctest: +SKIP
    >>> deployment = deployer.deploy("iris@champion", port=8500)  # doctest: +SKIP
    >>> deployment.endpoint_url  # doctest: +SKIP
    'http://127.0.0.1:8500'
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from rayline.clusters.schemas import ServiceCreate
from rayline.listeners import check_serving_listener
from rayline.metadata import Deployment, DeploymentMode, DeploymentStatus
from rayline.serving import records
from rayline.serving.deploy_lock import DeployLocks
from rayline.serving.deployer_release import release_unused_clusters
from rayline.serving.errors import DeploymentFailedError, ServingError
from rayline.serving.health import wait_until_healthy, withdraw_endpoints
from rayline.serving.model import ServedModel
from rayline.serving.model_source import fetch_model, resolve_version, served_model
from rayline.serving.runtimes import ServingRuntime, StartRequest, choose_mode, get_runtime
from rayline.serving.spec import ModelRef, ServingSpec, parse_model_ref

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings

__all__ = ["Deployer"]

log = logging.getLogger(__name__)


class Deployer:
    """Carries out deploys, rollbacks and deletes; the deploy job and CLI call it.

    Args:
        settings: Serving host, timeouts, grace period, store credentials.
        engine: The metadata store.
        manager: Client of the Cluster Manager (service discovery).
        mode: Serving mode of new deployments (default: :func:`choose_mode`).
        labels: Extra labels for the containers and images made (e.g. by tests).
        progress: Called with one line per step.
        runtimes: Runtimes to use by mode (default: from the runtime registry).
        on_live: Called with each deployment once it is live and what it replaced
            is retired (the deploy job sets MLflow's ``live`` alias there); it
            must not raise.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        manager: ClusterManagerClient,
        mode: DeploymentMode | str | None = None,
        labels: dict[str, str] | None = None,
        progress: Callable[[str], None] = log.info,
        runtimes: dict[DeploymentMode, ServingRuntime] | None = None,
        on_live: Callable[[Deployment], object] | None = None,
    ) -> None:
        check_serving_listener(settings)  # production keeps unprotected endpoints on loopback
        self.settings = settings
        self.engine = engine
        self.manager = manager
        self._mode = DeploymentMode(mode) if mode else None
        self.labels = dict(labels or {})
        self.progress = progress
        self._runtimes: dict[DeploymentMode, ServingRuntime] = dict(runtimes or {})
        self._locks = DeployLocks(settings, progress)
        self._on_live = on_live

    @property
    def mode(self) -> DeploymentMode:
        """The mode new deployments get."""
        if self._mode is None:
            self._mode = choose_mode(self.settings)
        return self._mode

    def runtime(self, mode: DeploymentMode | str) -> ServingRuntime:
        """The runtime of ``mode``, created once."""
        key = DeploymentMode(mode)
        if key not in self._runtimes:
            self._runtimes[key] = get_runtime(key, self.settings)
        return self._runtimes[key]

    # ------------------------------------------------------------------ deploy

    def deploy(
        self,
        ref: ModelRef | str,
        *,
        port: int | None = None,
        cluster_id: str | None = None,
        spec: ServingSpec | None = None,
        workflow_run_id: int | None = None,
    ) -> Deployment:
        """Serve a model version and switch its endpoint to it; see the module docs.

        Args:
            ref: ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` (or a parsed ref).
            port: Port to serve on (default: a free one).
            cluster_id: The serving cluster this runs for (recorded, and kept
                alive by the Cluster Manager while the endpoint is registered).
            spec: Replicas, batching and limits (default: :class:`ServingSpec`).
            workflow_run_id: The workflow run that asked (lineage).

        Returns:
            The LIVE deployment.

        Raises:
            ModelNotFoundError, ModelVersionNotFoundError, AliasNotFoundError: Unknown model.
            DeploymentFailedError: Fetching, verifying, starting or the health
                check failed; the deployment is FAILED and nothing of it runs. Or
                the model's deploy lock could not be taken (ZooKeeper down).
            PortInUseError: ``port`` is taken.
        """
        parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
        with self._locks.hold(parsed.name):  # the whole update, retiring included
            return self._deploy(parsed, port, cluster_id, spec, workflow_run_id)

    def _deploy(
        self,
        parsed: ModelRef,
        port: int | None,
        cluster_id: str | None,
        spec: ServingSpec | None,
        workflow_run_id: int | None,
    ) -> Deployment:
        served, store_uri = served_model(resolve_version(self.engine, parsed))
        row = records.create_deployment(
            self.engine,
            model_name=served.name,
            model_version=served.version,
            mode=self.mode,
            cluster_id=cluster_id,
            workflow_run_id=workflow_run_id,
        )
        self.progress(f"deployment {row.id}: {served.name} version {served.version} ({self.mode})")
        live = self._start(row, served, store_uri, spec or ServingSpec(), port)
        self._retire_others(live)
        if self._on_live is not None:
            self._on_live(live)
        return live

    def _start(
        self,
        row: Deployment,
        served: ServedModel,
        store_uri: str,
        spec: ServingSpec,
        port: int | None,
    ) -> Deployment:
        runtime = self.runtime(row.mode)
        workdir = Path(tempfile.mkdtemp(prefix=f"rayline-{row.id}-"))
        started = None
        try:
            model_dir = fetch_model(
                served,
                store_uri,
                workdir / "model",
                settings=self.settings,
                progress=self.progress,
            )
            records.update_deployment(self.engine, row.id, status=DeploymentStatus.STARTING)
            request = StartRequest(
                deployment_id=row.id,
                served=served,
                store_uri=store_uri,
                model_dir=model_dir,
                spec=spec,
                host=self.settings.serving_host,
                port=port,
                labels=self.labels,
                progress=self.progress,
            )
            started = runtime.start(request)
            row = records.update_deployment(
                self.engine,
                row.id,
                endpoint_url=started.endpoint_url,
                port=started.port,
                image=started.image,
                container_id=started.container_id,
            )
            self.progress(f"waiting for {started.endpoint_url}/healthz")
            wait_until_healthy(
                started.endpoint_url,
                deployment_id=row.id,
                timeout=self.settings.serving_start_timeout_seconds,
                still_running=lambda: runtime.startup_failure(row),
            )
            self._locks.check(served.name)
            self._register(row)
            return records.update_deployment(self.engine, row.id, status=DeploymentStatus.LIVE)
        except BaseException as err:
            self._fail(row, runtime, err, started_anything=started is not None)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _register(self, row: Deployment) -> None:
        assert row.endpoint_url is not None
        self.manager.register_service(
            ServiceCreate(
                model_name=row.model_name,
                model_version=row.model_version,
                url=row.endpoint_url,
                cluster_id=row.cluster_id,
                deployment_id=row.id,
            )
        )
        self.progress(f"endpoint {row.endpoint_url} registered")

    def _fail(
        self,
        row: Deployment,
        runtime: ServingRuntime,
        err: BaseException,
        *,
        started_anything: bool,
    ) -> None:
        detail = str(err) or type(err).__name__
        if started_anything:
            current = records.get_deployment(self.engine, row.id)
            logs = runtime.logs(current)
            if logs:
                detail = f"{detail}\n--- server output ---\n{logs}"
            self._withdraw(current)
            try:
                runtime.stop(current, drain_seconds=0)
            except ServingError as stop_err:
                detail += f"\n(could not stop it: {stop_err})"
        records.update_deployment(
            self.engine, row.id, status=DeploymentStatus.FAILED, error=detail[-4000:]
        )
        self.progress(f"deployment {row.id} FAILED: {detail.splitlines()[0]}")

    # ------------------------------------------------------------------ retire

    def _retire_others(self, live: Deployment) -> None:
        others = [
            d
            for d in records.list_deployments(
                self.engine, model=live.model_name, statuses=records.ACTIVE
            )
            if d.id != live.id
        ]
        if not others:
            return
        for old in others:
            self._withdraw(old)
            records.update_deployment(self.engine, old.id, status=DeploymentStatus.DRAINING)
        # Clients that looked the old endpoint up just before the switch still get answers.
        time.sleep(self.settings.serving_switch_grace_seconds)
        for old in others:
            self._stop(old, DeploymentStatus.STOPPED, f"replaced by {live.id}")
        release_unused_clusters(
            self.engine, self.manager, others, keep=live.cluster_id, progress=self.progress
        )

    def _withdraw(self, row: Deployment) -> None:
        """Deregister every endpoint of this deployment from service discovery."""
        for url in withdraw_endpoints(self.manager, row.model_name, row.id):
            self.progress(f"endpoint {url} withdrawn")

    def _stop(self, row: Deployment, status: DeploymentStatus, why: str) -> Deployment:
        # The runtime knows the drain time the server was started with, if longer.
        self.runtime(row.mode).stop(row, drain_seconds=ServingSpec().graceful_shutdown_timeout_s)
        self.progress(f"deployment {row.id} ({row.model_name} v{row.model_version}) stopped: {why}")
        return records.update_deployment(self.engine, row.id, status=status, error=None)

    # ------------------------------------------------------------------ rollback, delete

    def rollback(
        self,
        model: str,
        *,
        port: int | None = None,
        cluster_id: str | None = None,
        spec: ServingSpec | None = None,
        workflow_run_id: int | None = None,
    ) -> Deployment:
        """Deploy the version served before the current one (same path as a deploy).

        Raises:
            DeploymentFailedError: Nothing of ``model`` is live, or no other
                version was served before.
        """
        with self._locks.hold(model):  # the version to go back to is chosen under it too
            return self._rollback(model, port, cluster_id, spec, workflow_run_id)

    def _rollback(
        self,
        model: str,
        port: int | None,
        cluster_id: str | None,
        spec: ServingSpec | None,
        workflow_run_id: int | None,
    ) -> Deployment:
        live = records.list_deployments(
            self.engine, model=model, statuses=(DeploymentStatus.LIVE,), limit=1
        )
        if not live:
            raise DeploymentFailedError(
                f"model {model!r} has no live deployment to roll back; deploy a version "
                f"with `rayline deploy {model}:VERSION`"
            )
        previous = records.previous_version(self.engine, model, live[0].model_version)
        if previous is None:
            raise DeploymentFailedError(
                f"model {model!r} was never served in a version other than "
                f"{live[0].model_version}; deploy one with `rayline deploy {model}:VERSION`"
            )
        self.progress(f"rolling {model} back from version {live[0].model_version} to {previous}")
        return self.deploy(
            ModelRef(model, version=previous),
            port=port,
            cluster_id=cluster_id,
            spec=spec,
            workflow_run_id=workflow_run_id,
        )

    def delete(self, target: str) -> list[Deployment]:
        """Withdraw, drain and stop a deployment (by id) or every active one of a model.

        Raises:
            DeploymentNotFoundError: ``target`` is neither.
        """
        stopped = []
        for row in records.find_deployments(self.engine, target):
            if row.status not in records.ACTIVE:
                continue
            self._withdraw(row)
            records.update_deployment(self.engine, row.id, status=DeploymentStatus.DRAINING)
            stopped.append(self._stop(row, DeploymentStatus.STOPPED, "deleted"))
        return stopped
