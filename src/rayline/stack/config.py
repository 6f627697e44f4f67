"""Where the full local stack lives, on which ports, and its secrets.

Everything is read from the environment, so a test (or a second stack) can
run its own stack next to the default one:

| variable | default | meaning |
| --- | --- | --- |
| ``RAYLINE_STACK_DIR`` | ``$RAYLINE_HOME/stack`` | pid files, logs, secrets, ``AIRFLOW_HOME`` |
| ``RAYLINE_SERVICES_DIR`` | ``~/.local/state/rayline/services`` | `deploy/services.sh`'s state |
| ``RAYLINE_PG_PORT`` / ``RAYLINE_S3_PORT`` | 55432 / 59000 | the services' ports |
| ``RAYLINE_STACK_MANAGER_PORT`` | 8775 | the stack's Cluster Manager |
| ``RAYLINE_STACK_AIRFLOW_PORT`` | 8080 | Airflow's api-server (UI and REST API) |
| ``RAYLINE_STACK_DATABASE`` | ``rayline`` | our metadata database on the stack's Postgres |
| ``RAYLINE_STACK_AIRFLOW_DATABASE`` | ``airflow`` | Airflow's database on the same Postgres |
| ``RAYLINE_STACK_BUCKET`` | ``rayline`` | artifacts go to ``s3://BUCKET/artifacts`` |
| ``RAYLINE_STACK_COORDINATION`` | off | ``1``: start ZooKeeper, managers coordinate through it |
| ``RAYLINE_PROMETHEUS_PORT`` / ``RAYLINE_ZK_PORT`` | 59090 / 52181 | Prometheus, ZooKeeper |
| ``RAYLINE_STACK_MLFLOW_PORT`` | 55500 | MLflow's tracking server |
| ``RAYLINE_STACK_MLFLOW_DATABASE`` | ``mlflow`` | MLflow's backend store on the same Postgres |

``up`` writes these variables (with the stack's own, resolved values) into
``$RAYLINE_STACK_DIR/stack.env``: sourcing it names this stack to every later
command, even though it also points ``RAYLINE_HOME`` at the stack's manager.

Secrets (Airflow's admin password, JWT secret, API secret key and Fernet key; the
Cluster Manager's token) are generated on the first ``up`` and kept in
``$RAYLINE_STACK_DIR/secrets.json``, mode 600; nothing prints them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from rayline.private_dirs import check_private_dir

__all__ = [
    "SERVICES_SCRIPT",
    "Report",
    "StackConfig",
    "StackSecrets",
    "load_secrets",
    "read_services_env",
    "write_private",
]

#: The one implementation of the services' start and stop (also used by CI and make).
SERVICES_SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "services.sh"

#: Called with one line per step of the stack's commands (the progress display).
Report = Callable[[str], None]

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    value = int(raw) if raw else default
    if not 1024 <= value <= 65535:
        raise ValueError(f"{name}={value} is not a port between 1024 and 65535")
    return value


def _db_name(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not _DB_NAME.match(value):
        raise ValueError(f"{name}={value!r} is not a plain database name ([a-z_][a-z0-9_]*)")
    return value


def _services_dir() -> Path:
    """``RAYLINE_SERVICES_DIR``, else the default the services script itself resolves.

    The script is the one implementation of that default (it also finds an older
    install's state), so the stack and `make` never disagree on where it is.
    """
    if raw := os.environ.get("RAYLINE_SERVICES_DIR"):
        return Path(raw)
    out = subprocess.run(
        [str(SERVICES_SCRIPT), "env-file"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise ValueError(out.stderr.strip() or f"{SERVICES_SCRIPT} env-file failed")
    return Path(out.stdout.strip()).parent


@dataclass(frozen=True)
class StackConfig:
    """The addresses and paths of one local stack."""

    state_dir: Path
    services_dir: Path
    pg_port: int
    s3_port: int
    manager_port: int
    airflow_port: int
    database: str
    airflow_database: str
    bucket: str
    coordination: bool = False
    prometheus_port: int = 59090
    zookeeper_port: int = 52181
    mlflow_port: int = 55500
    mlflow_database: str = "mlflow"

    @classmethod
    def from_env(cls, state_dir: Path | None = None) -> StackConfig:
        """The stack described by the environment (see the module's table)."""
        home = Path(os.environ.get("RAYLINE_HOME", Path.home() / ".rayline"))
        state = state_dir or Path(os.environ.get("RAYLINE_STACK_DIR") or home / "stack")
        return cls(
            state_dir=state.expanduser().resolve(),
            services_dir=_services_dir(),
            pg_port=_port("RAYLINE_PG_PORT", 55432),
            s3_port=_port("RAYLINE_S3_PORT", 59000),
            manager_port=_port("RAYLINE_STACK_MANAGER_PORT", 8775),
            airflow_port=_port("RAYLINE_STACK_AIRFLOW_PORT", 8080),
            database=_db_name("RAYLINE_STACK_DATABASE", "rayline"),
            airflow_database=_db_name("RAYLINE_STACK_AIRFLOW_DATABASE", "airflow"),
            bucket=os.environ.get("RAYLINE_STACK_BUCKET") or "rayline",
            coordination=os.environ.get("RAYLINE_STACK_COORDINATION", "").lower()
            in ("1", "true", "yes", "on"),
            prometheus_port=_port("RAYLINE_PROMETHEUS_PORT", 59090),
            zookeeper_port=_port("RAYLINE_ZK_PORT", 52181),
            mlflow_port=_port("RAYLINE_STACK_MLFLOW_PORT", 55500),
            mlflow_database=_db_name("RAYLINE_STACK_MLFLOW_DATABASE", "mlflow"),
        )

    def to_env(self) -> dict[str, str]:
        """The variables that name this stack: `from_env` of them gives it back.

        ``RAYLINE_STACK_DIR`` is explicit because a sourced ``stack.env`` moves
        ``RAYLINE_HOME`` to the stack's manager home, from which the default state
        dir (``$RAYLINE_HOME/stack``) would no longer be this stack's.
        """
        return {
            "RAYLINE_STACK_DIR": str(self.state_dir),
            "RAYLINE_SERVICES_DIR": str(self.services_dir),
            "RAYLINE_PG_PORT": str(self.pg_port),
            "RAYLINE_S3_PORT": str(self.s3_port),
            "RAYLINE_STACK_MANAGER_PORT": str(self.manager_port),
            "RAYLINE_STACK_AIRFLOW_PORT": str(self.airflow_port),
            "RAYLINE_STACK_DATABASE": self.database,
            "RAYLINE_STACK_AIRFLOW_DATABASE": self.airflow_database,
            "RAYLINE_STACK_BUCKET": self.bucket,
            "RAYLINE_STACK_COORDINATION": "1" if self.coordination else "0",
            "RAYLINE_PROMETHEUS_PORT": str(self.prometheus_port),
            "RAYLINE_ZK_PORT": str(self.zookeeper_port),
            "RAYLINE_STACK_MLFLOW_PORT": str(self.mlflow_port),
            "RAYLINE_STACK_MLFLOW_DATABASE": self.mlflow_database,
        }

    @property
    def airflow_home(self) -> Path:
        """``AIRFLOW_HOME`` of the stack's Airflow (its airflow.cfg, logs)."""
        return self.state_dir / "airflow"

    @property
    def rayline_home(self) -> Path:
        """``RAYLINE_HOME`` of the stack's Cluster Manager (cluster logs, port leases)."""
        return self.state_dir / "home"

    @property
    def run_dir(self) -> Path:
        """Pid files of the processes the stack started."""
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        """Log files of the processes the stack started."""
        return self.state_dir / "logs"

    @property
    def manager_url(self) -> str:
        """The stack's Cluster Manager."""
        return f"http://127.0.0.1:{self.manager_port}"

    @property
    def airflow_url(self) -> str:
        """Airflow's api-server: the UI at ``/``, the REST API under ``/api/v2``."""
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def artifact_uri(self) -> str:
        """Where models and their artifacts go."""
        return f"s3://{self.bucket}/artifacts"

    @property
    def mlflow_artifacts(self) -> str:
        """Where the MLflow server keeps the artifacts of tracked runs."""
        return f"s3://{self.bucket}/mlflow"


@dataclass(frozen=True)
class StackSecrets:
    """Secrets generated once per stack; `SecretStr` so no repr or log shows them."""

    airflow_admin_password: SecretStr
    airflow_jwt_secret: SecretStr
    airflow_api_secret_key: SecretStr
    airflow_fernet_key: SecretStr
    manager_token: SecretStr
    zookeeper_password: SecretStr


def _new_secrets() -> dict[str, str]:
    return {
        "airflow_admin_password": secrets.token_urlsafe(24),
        "airflow_jwt_secret": secrets.token_urlsafe(48),
        "airflow_api_secret_key": secrets.token_urlsafe(48),
        "airflow_fernet_key": Fernet.generate_key().decode(),
        "manager_token": secrets.token_urlsafe(32),
        "zookeeper_password": secrets.token_urlsafe(24),
    }


def load_secrets(state_dir: Path, *, create: bool = True) -> StackSecrets:
    """Read ``secrets.json`` from ``state_dir``; generate it (mode 600) when missing.

    A file from an older Rayline gets the secrets it lacks added; those it has
    are never changed (Airflow's Fernet key encrypts its stored connections).

    Raises:
        FileNotFoundError: the file is missing and ``create`` is False (the stack
            was never brought up from this state dir).
    """
    path = state_dir / "secrets.json"
    if not path.is_file():
        if not create:
            raise FileNotFoundError(
                f"{path} does not exist: bring the stack up first (`rayline stack up`)"
            )
        write_private(path, json.dumps(_new_secrets(), indent=2) + "\n")
    stored = json.loads(path.read_text())
    if missing := set(StackSecrets.__annotations__) - set(stored):
        stored |= {key: value for key, value in _new_secrets().items() if key in missing}
        write_private(path, json.dumps(stored, indent=2) + "\n")
    return StackSecrets(**{key: SecretStr(stored[key]) for key in StackSecrets.__annotations__})


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created mode 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def read_services_env(services_dir: Path) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines `deploy/services.sh` wrote to ``services.env``."""
    path = services_dir / "services.env"
    if services_dir.exists():
        check_private_dir(services_dir)  # another user could have planted the file
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the services were never started")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep and name.strip():
            values[name.strip()] = value.strip()
    return values
