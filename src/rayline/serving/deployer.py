"""Deploy, update, roll back and delete model deployments, without downtime.

A deploy resolves the version, fetches and verifies every file, starts the new
server (container or Serve app), waits until it answers, registers its
endpoint with the Cluster Manager, records it LIVE, and only then retires the
deployments of the same model it replaces: their endpoints are withdrawn, they
keep answering for a short grace period (clients that looked them up just
before the switch), then drain and stop. A new version that fails at any step
is stopped and recorded FAILED; what served before goes on serving.

With ZooKeeper configured (``RAYLINE_ZOOKEEPER_HOSTS``), a deploy or rollback
holds the model's ``deploy-<model>`` lock from choosing the version to retiring
the old one, so two concurrent deploys of one model, from any hosts, run one after
the other and never leave two versions LIVE.

Example:
    >>> deployer = Deployer(settings=settings, engine=engine, manager=client)  # doctest: +SKIP
    >>> deployment = deployer.deploy("iris@champion", port=8500)  # doctest: +SKIP
    >>> deployment.endpoint_url  # doctest: +SKIP
    'http://127.0.0.1:8500'
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Engine

from rayline.clusters.errors import NotFoundError as ManagerNotFoundError
from rayline.clusters.schemas import ServiceCreate
from rayline.listeners import check_serving_listener
from rayline.metadata import (
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    ModelRegistry,
    ModelVersion,
)
from rayline.serving import records
from rayline.serving.errors import DeploymentFailedError, ServingError
from rayline.serving.model import ServedModel, load_predictor
from rayline.serving.runtimes import ServingRuntime, StartRequest, choose_mode, get_runtime
from rayline.serving.spec import ModelRef, ServingSpec, parse_model_ref
from rayline.storage import StorageError, open_store

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings
    from rayline.coordination.locks import LockLease

__all__ = ["Deployer", "resolve_version", "split_artifact_uri", "wait_until_healthy"]

log = logging.getLogger(__name__)

# How long a deploy waits for another deploy of its model
# (one that builds an image may take many minutes).
_DEPLOY_LOCK_TIMEOUT_SECONDS = 3600.0


def resolve_version(engine: Engine, ref: ModelRef) -> ModelVersion:
    """The registered version a reference names (latest READY one for a bare name).

    Raises:
        ModelNotFoundError, ModelVersionNotFoundError, AliasNotFoundError: Not registered.
    """
    registry = ModelRegistry()
    if ref.alias is not None:
        return registry.resolve_alias(engine, name=ref.name, alias=ref.alias)
    return registry.get_version(engine, name=ref.name, version=ref.version)


def split_artifact_uri(uri: str, name: str) -> tuple[str, str]:
    """``<store root>/<name>/<version id>`` -> (store root, version id).

    Raises:
        ServingError: The URI is not a published version of ``name``.
    """
    root, _, version_id = uri.rstrip("/").rpartition("/")
    if not root.endswith(f"/{name}") or not version_id:
        raise ServingError(
            f"registered artifact URI {uri!r} is not <store>/{name}/<version id>; register "
            "the version with the URI rayline.storage returned when publishing it"
        )
    return root.removesuffix(f"/{name}"), version_id


def wait_until_healthy(
    url: str,
    *,
    deployment_id: str,
    timeout: float,
    still_running: Callable[[], str | None],
) -> None:
    """Poll ``url/healthz`` until this deployment answers it.

    Args:
        url: The endpoint's base URL.
        deployment_id: The answer must name it (another server may hold the port).
        timeout: Seconds to wait.
        still_running: Returns why the server is gone, or None while it runs.

    Raises:
        DeploymentFailedError: The server died or did not answer in time.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        gone = still_running()
        if gone:
            raise DeploymentFailedError(f"the server stopped before it became healthy: {gone}")
        try:
            response = httpx.get(f"{url}/healthz", timeout=5)
            if (
                response.status_code == 200
                and response.json().get("deployment_id") == deployment_id
            ):
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except (httpx.HTTPError, ValueError) as err:
            last = f"{type(err).__name__}"
        time.sleep(0.5)
    raise DeploymentFailedError(
        f"{url}/healthz did not answer within {timeout:.0f}s (last: {last}); raise "
        "RAYLINE_SERVING_START_TIMEOUT_SECONDS if the machine is slow"
    )


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
    ) -> None:
        check_serving_listener(settings)  # production keeps unprotected endpoints on loopback
        self.settings = settings
        self.engine = engine
        self.manager = manager
        self._mode = DeploymentMode(mode) if mode else None
        self.labels = dict(labels or {})
        self.progress = progress
        self._runtimes: dict[DeploymentMode, ServingRuntime] = dict(runtimes or {})
        # Models whose deploy lock this deployer holds, with the lock's lease.
        self._locked: dict[str, LockLease] = {}

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
        with self._model_lock(parsed.name):  # The whole update
            return self._deploy(parsed, port, cluster_id, spec, workflow_run_id)

    def _deploy(
        self,
        parsed: ModelRef,
        port: int | None,
        cluster_id: str | None,
        spec: ServingSpec | None,
        workflow_run_id: int | None,
    ) -> Deployment:
        version = resolve_version(self.engine, parsed)
        store_uri, version_id = split_artifact_uri(version.artifact_uri, version.model_name)
        served = ServedModel(
            name=version.model_name,
            version=version.version,
            version_id=version_id,
            sha256=version.sha256,
            framework=version.framework,
        )
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
            model_dir = self._fetch(served, store_uri, workdir)
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
            self._check_lock(served.name)
            self._register(row)
            return records.update_deployment(self.engine, row.id, status=DeploymentStatus.LIVE)
        except BaseException as err:
            self._fail(row, runtime, err, started_anything=started is not None)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _fetch(self, served: ServedModel, store_uri: str, workdir: Path) -> Path:
        """Download the version and check every file against the registered manifest."""
        target = workdir / "model"
        self.progress(
            f"fetching {store_uri}/{served.name}/{served.version_id} and verifying sha256"
        )
        try:
            open_store(store_uri, self.settings).fetch_version(
                served.name, served.version_id, target, expected_manifest_sha256=served.sha256
            )
        except StorageError as err:
            raise DeploymentFailedError(
                f"refusing to deploy {served.name} version {served.version}: {err}"
            ) from err
        self._check_loads(served, target)
        return target

    def _check_loads(self, served: ServedModel, model_dir: Path) -> None:
        """Load the model once here, so a broken version fails before anything starts.

        Otherwise the server would start and Serve would retry the replica for a
        minute before giving up, while the old version serves on regardless.
        """
        self.progress("loading the model once to check it")
        try:
            load_predictor(model_dir)
        except Exception as err:  # any library's error: the files cannot be served
            raise DeploymentFailedError(
                f"refusing to deploy {served.name} version {served.version}: its model files "
                f"pass their checksums but cannot be loaded ({type(err).__name__}: {err}); "
                "publish a version written by rayline.training"
            ) from err

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

    @contextlib.contextmanager
    def _model_lock(self, model: str) -> Iterator[None]:
        """Hold ``deploy-<model>`` across replicas and hosts.

        Re-entrant within this deployer (a rollback deploys under its own lock).
        """
        if model in self._locked:
            yield
            return
        from rayline.coordination import CoordinationUnavailableError
        from rayline.coordination.locks import LockHeldError, held_lock

        with contextlib.ExitStack() as stack:
            try:
                lease = stack.enter_context(
                    held_lock(
                        self.settings,
                        f"deploy-{model}",
                        timeout=_DEPLOY_LOCK_TIMEOUT_SECONDS,
                        waiting=self.progress,
                        holder=f"deploying {model}",
                    )
                )
            except (CoordinationUnavailableError, LockHeldError) as err:
                raise DeploymentFailedError(
                    f"not deploying {model}: {err}; nothing was started, what serves goes on"
                ) from err
            self._locked[model] = lease
            try:
                yield
            finally:
                self._locked.pop(model, None)

    def _check_lock(self, model: str) -> None:
        """Go live only while still holding the model's lock.

        Raises:
            DeploymentFailedError: the ZooKeeper session holding it expired meanwhile,
                so another deploy may hold it now; this one must not undo that.
        """
        lease = self._locked.get(model)
        if lease is not None and lease.lost:
            raise DeploymentFailedError(
                f"lost the deploy lock of {model} while starting (its ZooKeeper session "
                "expired); this version is stopped so that another deploy holding the "
                "lock now is not undone, what served before goes on"
            )

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

    def _withdraw(self, row: Deployment) -> None:
        """Deregister every endpoint of this deployment from service discovery."""
        for service in self.manager.list_services(row.model_name).data:
            if service.deployment_id == row.id:
                with contextlib.suppress(ManagerNotFoundError):
                    self.manager.deregister_service(service.id)
                self.progress(f"endpoint {service.url} withdrawn")

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
        with self._model_lock(model):  # Choose under the lock too
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
