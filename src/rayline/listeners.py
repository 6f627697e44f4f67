"""Which listeners may bind beyond loopback: in production, only those with TLS and a token.

Every listener binds ``127.0.0.1`` by default. With ``RAYLINE_ENVIRONMENT=production``
a listener on any other address must be protected by TLS and an auth token, or
start-up fails with a message naming the setting to change. The Cluster Manager
checks all three at start-up (it configures the clusters and hands the serving
settings to deploy jobs); the local cluster backend and the deployer check their own.

Today only the Cluster Manager API can be protected (``RAYLINE_TLS_CERT_FILE``,
``RAYLINE_TLS_KEY_FILE`` and ``RAYLINE_API_TOKEN``). Rayline starts Ray's dashboard,
Jobs API and model endpoints without TLS, so production keeps them on loopback;
reach them through a TLS-terminating, authenticating proxy, or run clusters across
machines with Ray's own launcher or KubeRay.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rayline.config import LOOPBACK, UnsafeSettingsError

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = [
    "Listener",
    "check_listeners",
    "check_manager_listener",
    "check_ray_listener",
    "check_serving_listener",
    "is_loopback",
]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``).

    Any other name counts as exposed: ``0.0.0.0`` and ``::`` bind every interface,
    and a host name may resolve to anything.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Listener:
    """One listener and what protects it.

    Attributes:
        what: What listens, for the message.
        setting: The setting (or option) that names its address.
        host: The address it binds.
        missing: What it lacks for a non-loopback address in production; empty: safe.
    """

    what: str
    setting: str
    host: str
    missing: tuple[str, ...]

    def check(self, settings: Settings) -> None:
        """Raise when production would expose this listener unprotected.

        Raises:
            UnsafeSettingsError: Naming the setting to change and what is missing.
        """
        if settings.environment != "production" or is_loopback(self.host) or not self.missing:
            return
        raise UnsafeSettingsError(
            f"{self.setting}={self.host} exposes {self.what} beyond this machine, and in "
            f"production that needs TLS and an auth token: {'; '.join(self.missing)}. "
            f"Or set {self.setting}={LOOPBACK}"
        )


def _manager_missing(settings: Settings) -> tuple[str, ...]:
    missing = []
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None or key is None:
        missing.append("set RAYLINE_TLS_CERT_FILE and RAYLINE_TLS_KEY_FILE (PEM) for HTTPS")
    else:
        missing += [
            f"{name}={path} is not a readable file"
            for name, path in (("RAYLINE_TLS_CERT_FILE", cert), ("RAYLINE_TLS_KEY_FILE", key))
            if not path.is_file()
        ]
    if settings.api_token is None:
        missing.append("set RAYLINE_API_TOKEN to a long random secret")
    return tuple(missing)


def check_manager_listener(settings: Settings, host: str | None = None) -> None:
    """Check the Cluster Manager API's address (``host`` overrides ``RAYLINE_API_HOST``).

    Raises:
        UnsafeSettingsError: Production, a non-loopback address, and no TLS or no token.
    """
    setting = "RAYLINE_API_HOST" if host is None else "--host"
    Listener(
        "the Cluster Manager API", setting, host or settings.api_host, _manager_missing(settings)
    ).check(settings)


def check_ray_listener(settings: Settings) -> None:
    """Check the address local Ray clusters bind (dashboard, Jobs API, GCS).

    Raises:
        UnsafeSettingsError: Production and a non-loopback ``RAYLINE_RAY_BIND_ADDRESS``.
    """
    Listener(
        "the Ray dashboard, Jobs API and GCS of every local cluster",
        "RAYLINE_RAY_BIND_ADDRESS",
        settings.ray_bind_address,
        ("Rayline starts Ray without TLS (use Ray's launcher or KubeRay for multi-host clusters)",),
    ).check(settings)


def check_serving_listener(settings: Settings) -> None:
    """Check the address model endpoints bind.

    Raises:
        UnsafeSettingsError: Production and a non-loopback ``RAYLINE_SERVING_HOST``.
    """
    Listener(
        "the model endpoints",
        "RAYLINE_SERVING_HOST",
        settings.serving_host,
        ("model endpoints have no TLS or token of their own: put an HTTPS proxy that "
         "checks a token in front of them",),
    ).check(settings)  # fmt: skip


def check_listeners(settings: Settings, *, api_host: str | None = None) -> None:
    """Check every listener the settings configure; the Cluster Manager runs this at start-up.

    Args:
        settings: The settings to check.
        api_host: The Cluster Manager's address when given on the command line.

    Raises:
        UnsafeSettingsError: The first listener production would expose unprotected.
    """
    check_manager_listener(settings, api_host)
    check_ray_listener(settings)
    check_serving_listener(settings)
