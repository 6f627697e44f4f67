"""The stack's own servers beside the services: MLflow and Prometheus (always) and
ZooKeeper (coordination on).

Each is started and stopped through its own script (`deploy/mlflow.sh`,
`deploy/monitoring.sh`, `deploy/zookeeper.sh`), which keep their state under the
stack's directories and stop only what they started. Prometheus reads the targets
the stack's Cluster Manager writes (``$RAYLINE_HOME/prometheus/targets``) and scrapes the manager
with its token. ZooKeeper is started before the manager, whose environment then
names it (``RAYLINE_ZOOKEEPER_HOSTS``); MLflow too, before the manager and
Airflow, whose training jobs then track to it (``RAYLINE_MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rayline.stack.config import SERVICES_SCRIPT, StackConfig

__all__ = ["Addon", "mlflow", "monitoring", "zookeeper"]

MONITORING_SCRIPT = SERVICES_SCRIPT.with_name("monitoring.sh")
ZOOKEEPER_SCRIPT = SERVICES_SCRIPT.with_name("zookeeper.sh")
MLFLOW_SCRIPT = SERVICES_SCRIPT.with_name("mlflow.sh")
#: What `deploy/mlflow.sh` needs of ``services.env``: its database server and S3.
_MLFLOW_SERVICE_VARS = frozenset(
    {
        "RAYLINE_PG_URL",
        "RAYLINE_S3_ENDPOINT_URL",
        "RAYLINE_S3_ACCESS_KEY_ID",
        "RAYLINE_S3_SECRET_ACCESS_KEY",
    }
)


class AddonError(RuntimeError):
    """A script said no; its message says why."""


@dataclass(frozen=True)
class Addon:
    """One server a script starts, stops and reports on.

    Attributes:
        name: how the stack calls it (``prometheus``, ``zookeeper``).
        script: its ``deploy/*.sh`` script.
        env: the script's settings (state dir, ports, token).
        url: where it answers.
    """

    name: str
    script: Path
    env: dict[str, str]
    url: str

    def run(self, command: str) -> str:
        """``script command``; its output.

        Raises:
            AddonError: the script failed.
        """
        done = subprocess.run(
            [str(self.script), command],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise AddonError(f"{self.script.name} {command}: {done.stderr.strip()[-1500:]}")
        return done.stdout

    def is_up(self) -> bool:
        """True when the script reports its server up."""
        try:
            out = self.run("status")
        except AddonError:
            return False
        return any(": up" in line or line.strip().startswith("up") for line in out.splitlines())


def monitoring(config: StackConfig, token: str) -> Addon:
    """The stack's Prometheus: our config and rules, the stack manager's targets."""
    port = config.prometheus_port
    return Addon(
        name="prometheus",
        script=MONITORING_SCRIPT,
        env={
            "RAYLINE_HOME": str(config.rayline_home),
            "RAYLINE_MONITORING_DIR": str(config.state_dir / "monitoring"),
            "RAYLINE_PROMETHEUS_PORT": str(port),
            "RAYLINE_PROMETHEUS_SD_DIR": str(config.rayline_home / "prometheus" / "targets"),
            "RAYLINE_API_TOKEN": token,
        },
        url=f"http://127.0.0.1:{port}",
    )


def zookeeper(config: StackConfig) -> Addon:
    """The stack's ZooKeeper (standalone, loopback) for coordinated managers."""
    port = config.zookeeper_port
    return Addon(
        name="zookeeper",
        script=ZOOKEEPER_SCRIPT,
        env={"RAYLINE_SERVICES_DIR": str(config.services_dir), "RAYLINE_ZK_PORT": str(port)},
        url=f"127.0.0.1:{port}",
    )


def mlflow(config: StackConfig, services: dict[str, str]) -> Addon:
    """The stack's MLflow tracking server: its own database, artifacts on the stack's bucket.

    Args:
        config: the stack.
        services: ``services.env`` of the services (Postgres and S3 addresses and keys),
            which the script needs to create MLflow's database and reach S3.
    """
    port = config.mlflow_port
    return Addon(
        name="mlflow",
        script=MLFLOW_SCRIPT,
        env={
            **{k: v for k, v in services.items() if k in _MLFLOW_SERVICE_VARS},
            "RAYLINE_MLFLOW_PORT": str(port),
            "RAYLINE_MLFLOW_DATABASE": config.mlflow_database,
            "RAYLINE_MLFLOW_ARTIFACTS": config.mlflow_artifacts,
            "RAYLINE_MLFLOW_DIR": str(config.state_dir / "mlflow"),
        },
        url=f"http://127.0.0.1:{port}",
    )
