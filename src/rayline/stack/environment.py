"""The environment of the stack's processes, and ``stack.env`` for the user's shell.

Every process the stack starts (the Cluster Manager, Airflow's components, the
``rayline down`` it runs) gets the same environment: the caller's, without its
Airflow settings, plus the stack's addresses, secrets and the variables that name
the stack (`StackConfig.to_env`). ``stack.env`` holds the part a shell needs so
that `rayline ...` there talks to this stack, and finds it again.
"""

from __future__ import annotations

import os
import shlex

from rayline.config import SMALL_HOST_POOL
from rayline.orchestration.embedded import rayline_connection_environment
from rayline.stack import addons
from rayline.stack.config import StackConfig, StackSecrets, read_services_env, write_private
from rayline.stack.services import database_url

__all__ = ["process_environment", "write_user_env"]

#: Besides every ``RAYLINE_*`` variable, what ``stack.env`` exports.
_USER_NAMES = ("DOCKER_HOST", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


def process_environment(config: StackConfig, secrets: StackSecrets) -> dict[str, str]:
    """The environment of every process of the stack (it holds secrets)."""
    services = read_services_env(config.services_dir)
    token = secrets.manager_token.get_secret_value()
    ours = {
        **config.to_env(),
        "RAYLINE_HOME": str(config.rayline_home),
        "RAYLINE_DATABASE_URL": database_url(config, config.database),
        "RAYLINE_ARTIFACT_URI": config.artifact_uri,
        "RAYLINE_S3_ENDPOINT_URL": services["RAYLINE_S3_ENDPOINT_URL"],
        "RAYLINE_S3_ACCESS_KEY_ID": services["RAYLINE_S3_ACCESS_KEY_ID"],
        "RAYLINE_S3_SECRET_ACCESS_KEY": services["RAYLINE_S3_SECRET_ACCESS_KEY"],
        "RAYLINE_API_HOST": "127.0.0.1",
        "RAYLINE_API_PORT": str(config.manager_port),
        "RAYLINE_CLUSTER_MANAGER_URL": config.manager_url,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_POOL": os.environ.get("RAYLINE_POOL", SMALL_HOST_POOL),
        "DOCKER_HOST": services["DOCKER_HOST"],
        "AIRFLOW_HOME": str(config.airflow_home),
        "AIRFLOW_CONFIG": str(config.airflow_home / "airflow.cfg"),
        **rayline_connection_environment(config.manager_url, token),
    }
    # Training in the stack is tracked, and fails before it starts when MLflow cannot
    # track it (unless the user allowed untracked runs).
    ours["RAYLINE_MLFLOW_TRACKING_URI"] = addons.mlflow(config, {}).url
    ours["RAYLINE_MLFLOW_REQUIRED"] = os.environ.get("RAYLINE_MLFLOW_REQUIRED", "true")
    if config.coordination:
        ours["RAYLINE_ZOOKEEPER_HOSTS"] = addons.zookeeper(config).url
        # The managers' znodes are theirs alone (digest ACLs); discovery may read.
        ours["RAYLINE_ZOOKEEPER_PASSWORD"] = secrets.zookeeper_password.get_secret_value()
    # The caller's Airflow settings (e.g. an embedded AIRFLOW_HOME) must not leak in.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return {**inherited, **ours, "PYTHONUNBUFFERED": "1"}


def write_user_env(config: StackConfig, env: dict[str, str]) -> None:
    """``stack.env`` (mode 600): `source` it to point `rayline ...` at this stack."""
    names = {k for k in env if k.startswith("RAYLINE_")} | set(_USER_NAMES)
    lines = [f"export {name}={shlex.quote(env[name])}" for name in sorted(names)]
    write_private(config.state_dir / "stack.env", "\n".join(lines) + "\n")
