"""One settings object for all of Rayline.

Settings come, highest priority first, from keyword arguments, ``RAYLINE_*``
environment variables, an optional YAML or TOML file named by
``RAYLINE_CONFIG_FILE``, and the embedded defaults below. The embedded defaults
run everything on this machine: SQLite metadata, ``file://`` artifacts and
local Ray clusters, every listener on ``127.0.0.1``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

__all__ = ["SMALL_HOST_POOL", "Settings", "UnsafeSettingsError", "get_settings"]

LOOPBACK = "127.0.0.1"
# The warm pool the embedded demo and the local stack turn on: one spare of each
# workflow cluster (an idle Ray head holds ~1 GB and some CPU on a 2-core host).
SMALL_HOST_POOL = "training:1,serving:1"
_DEV_TOKEN_HINT = "set RAYLINE_API_TOKEN to a long random secret (e.g. `openssl rand -hex 32`)"


class UnsafeSettingsError(ValueError):
    """Raised when a setting is unsafe for a non-development environment."""


def _default_home() -> Path:
    return Path(os.environ.get("RAYLINE_HOME", Path.home() / ".rayline"))


def _config_file() -> Path | None:
    raw = os.environ.get("RAYLINE_CONFIG_FILE")
    return Path(raw) if raw else None


class Settings(BaseSettings):
    """Rayline settings, read from ``RAYLINE_*`` variables and an optional file."""

    model_config = SettingsConfigDict(env_prefix="RAYLINE_", extra="forbid", validate_default=True)

    environment: Literal["development", "production"] = "development"
    home: Path = Field(default_factory=_default_home)
    cache_dir: Path = Field(
        default_factory=lambda: Path(
            os.environ.get("RAYLINE_CACHE_DIR", Path.home() / ".cache" / "rayline")
        )
    )

    # Metadata store: SQLite file by default, Postgres in the full stack.
    database_url: str = ""

    # Artifact store: a local directory by default, s3://bucket/prefix otherwise.
    artifact_uri: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # Transfer tuning, measured with benchmarks/artifact_throughput.py (1 GiB,
    # loopback versitygw, 2 cores): 64 MiB parts on 8 threads, with sha256 on
    # both ends, matched or beat boto3's defaults (8 MiB parts, 10 threads),
    # using ~40% less client CPU on upload; 16-32 MiB parts, 4 threads or a
    # single PUT up to 2 GiB were no better. Over a real network, more threads help.
    s3_multipart_threshold_mb: int = Field(default=64, ge=5, le=5120)
    s3_multipart_chunk_mb: int = Field(default=64, ge=5, le=5120)
    s3_max_concurrency: int = Field(default=8, ge=1, le=64)

    # Training reads file:// datasets only under these absolute directories, separated
    # by os.pathsep or commas; empty: the artifact root (when file://) and the cwd.
    data_roots: str = ""

    # Cluster Manager.
    api_host: str = LOOPBACK
    api_port: int = Field(default=8765, ge=1, le=65535)
    api_token: SecretStr | None = None
    # PEM certificate and key: the Cluster Manager serves HTTPS with them (uvicorn's
    # ssl_certfile/ssl_keyfile). Production needs them for a non-loopback API_HOST.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Bodies above this are refused (413) before auth and JSON parsing.
    api_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Connections and requests served at once; beyond, uvicorn answers 503 at once.
    api_limit_concurrency: int = Field(default=128, ge=1, le=10_000)
    # Long-polls (POST /v1/clusters/{id}/wait) one client may hold at once; beyond: 429.
    api_max_waits_per_client: int = Field(default=32, ge=1, le=10_000)
    cluster_manager_url: str = ""
    cluster_backend: str = "local"
    max_live_clusters: int = Field(default=8, ge=1, le=10_000)
    provision_timeout_seconds: float = Field(default=300, gt=0)
    reaper_interval_seconds: float = Field(default=5, gt=0)
    # A serving cluster backing no deployment, endpoint or job this long is reaped.
    # Long enough for the gap between a first deployment's cluster and its deploy job.
    serving_idle_seconds: float = Field(default=300, ge=5, le=30 * 24 * 3600)
    unhealthy_grace_seconds: float = Field(default=30, ge=0)
    # Consecutive failed probes of a live cluster before it is UNHEALTHY (a loaded host
    # can miss one probe's timeout); processes found dead count at once.
    unhealthy_after_missed_probes: int = Field(default=2, ge=1)
    # Logical CPUs are scheduling slots, not cores: local clusters may promise
    # this many times the host's cores before a spec is refused as impossible.
    cpu_overcommit: float = Field(default=4, ge=1)
    # Prometheus file_sd target files the manager keeps up to date (deploy/prometheus/).
    prometheus_sd_dir: Path = Field(
        default_factory=lambda data: data["home"] / "prometheus" / "targets"
    )

    # ZooKeeper for several manager replicas; empty = one manager.
    zookeeper_hosts: str = ""
    zookeeper_root: str = "/rayline"
    # Leadership moves to another replica within this long after the leader dies.
    zookeeper_session_timeout_seconds: float = Field(default=10, ge=1, le=60)
    # Digest password of the `rayline` ZooKeeper user: with it, every znode the
    # managers create is writable only by them (reads stay open for discovery).
    zookeeper_password: SecretStr | None = None
    # Applied to requests that leave them unset; shared by replicas (`rayline config set`).
    default_ttl_seconds: int | None = Field(default=None, ge=1)
    default_idle_timeout_seconds: int | None = Field(default=None, ge=1)
    # Warm cluster pools: "training:1,serving:1" (purpose:size, default shapes) or,
    # in the config file, a list of shapes ({name, purpose, size, head, worker,
    # worker_count, runtime_env}); parsed and checked by `rayline.clusters.pools`.
    pool: str | list[dict[str, Any]] = ""
    # A refill waits this long after an adoption, so the adopting workflow's first
    # job gets the CPUs before another Ray head starts beside it.
    pool_refill_delay_seconds: float = Field(default=5, ge=0)

    # Ray clusters started by the local backend.
    ray_bind_address: str = LOOPBACK
    # Ray temp dirs go under here; short, because Ray's sockets live inside and
    # AF_UNIX paths stop at 107 bytes. Unset: /tmp/rl-<random>, mode 700, its name
    # kept in $RAYLINE_HOME/ray-temp-base (see rayline.private_dirs).
    ray_temp_base: Path | None = None
    # Node logs and the port lease file of local clusters.
    cluster_state_dir: Path = Field(default_factory=lambda data: data["home"] / "clusters")
    # Ports of local clusters come from this range, below Linux's ephemeral ports.
    local_port_range_start: int = Field(default=24100, ge=1024, le=65535)
    local_port_range_end: int = Field(default=32700, ge=1024, le=65535)
    # Each Ray worker process (task or actor) of a node listens on one of these.
    local_worker_ports_per_node: int = Field(default=100, ge=10, le=10_000)
    local_stop_grace_seconds: float = Field(default=10, ge=0)

    # Serving. `auto`: a Docker container when an engine answers, else Ray Serve
    # straight on the serving cluster.
    serving_mode: Literal["auto", "docker", "ray"] = "auto"
    # Base of model images; empty: the one `rayline images build-base` builds for
    # this Rayline version (production may name e.g. rayproject/ray:2.60.0 plus deps).
    serving_base_image: str = ""
    serving_host: str = LOOPBACK
    serving_debian_suite: str = "bookworm"
    serving_debian_mirror: str = "http://deb.debian.org/debian"
    # How long a new deployment may take to answer /healthz before it counts as failed.
    serving_start_timeout_seconds: float = Field(default=300, gt=0)
    # After the endpoint switched, clients that looked up the old one still get
    # answers for this long before the old deployment drains and stops.
    serving_switch_grace_seconds: float = Field(default=5, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the optional config file below the environment in priority."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(
                    f"RAYLINE_CONFIG_FILE points at {path}, which does not exist; "
                    "fix the path or unset the variable"
                )
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @field_validator("data_roots")
    @classmethod
    def _check_data_roots(cls, value: str) -> str:
        relative = [root for root in _split_roots(value) if not Path(root).is_absolute()]
        if relative:
            raise ValueError(
                f"RAYLINE_DATA_ROOTS entries must be absolute directories, not {relative}"
            )
        return value

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'rayline.db'}"
        if not self.artifact_uri:
            self.artifact_uri = (self.home / "artifacts").resolve().as_uri()
        if not self.cluster_manager_url:
            scheme = "https" if self.tls_cert_file else "http"
            self.cluster_manager_url = f"{scheme}://{self.api_host}:{self.api_port}"
        if self.environment != "development":
            self._refuse_unsafe_defaults()
        return self

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "RAYLINE_TLS_CERT_FILE and RAYLINE_TLS_KEY_FILE go together: set both or neither"
            )
        return self

    @model_validator(mode="after")
    def _check_port_range(self) -> Settings:
        if self.local_port_range_start >= self.local_port_range_end:
            raise ValueError(
                f"RAYLINE_LOCAL_PORT_RANGE_START ({self.local_port_range_start}) must be below "
                f"RAYLINE_LOCAL_PORT_RANGE_END ({self.local_port_range_end})"
            )
        return self

    def _refuse_unsafe_defaults(self) -> None:
        token = self.api_token.get_secret_value() if self.api_token else ""
        if len(token) < 32:
            raise UnsafeSettingsError(
                f"RAYLINE_API_TOKEN is missing or shorter than 32 characters; {_DEV_TOKEN_HINT}"
            )
        if self.database_url.startswith("sqlite"):
            raise UnsafeSettingsError(
                "production needs a shared metadata store: set RAYLINE_DATABASE_URL "
                "to postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
            )
        if self.zookeeper_hosts and self.zookeeper_password is None:
            raise UnsafeSettingsError(
                "production with ZooKeeper needs RAYLINE_ZOOKEEPER_PASSWORD: without it any "
                "client of the ensemble can rewrite the leader, locks and registry"
            )

    def data_root_paths(self) -> tuple[Path, ...]:
        """Directories training may read ``file://`` datasets from, symlinks resolved.

        ``RAYLINE_DATA_ROOTS`` when set; else the artifact root (when it is a local
        directory) and the current working directory, unless that is ``/`` (a
        service started from ``/`` would otherwise allow every file).
        """
        if self.data_roots:
            roots = [Path(root) for root in _split_roots(self.data_roots)]
        else:
            roots = [cwd] if (cwd := Path.cwd()) != Path(cwd.anchor) else []
            parts = urlsplit(self.artifact_uri)
            if parts.scheme == "file":
                roots.insert(0, Path(url2pathname(parts.path)))
        return tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in roots))

    def s3_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", ...)`` built from these settings."""
        kwargs: dict[str, Any] = {"region_name": self.s3_region}
        if self.s3_endpoint_url:
            kwargs["endpoint_url"] = self.s3_endpoint_url
        if self.s3_access_key_id and self.s3_secret_access_key:
            kwargs["aws_access_key_id"] = self.s3_access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = self.s3_secret_access_key.get_secret_value()
        return kwargs


def _split_roots(value: str) -> list[str]:
    parts = value.replace(",", os.pathsep).split(os.pathsep)
    return [part.strip() for part in parts if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
