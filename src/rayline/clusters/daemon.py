"""Run the Cluster Manager in the background on this machine (the embedded default).

`ensure_running` starts `rayline cluster-manager serve` detached, in its own
process group, with its pid in `$RAYLINE_HOME/cluster-manager.pid`, unless a
manager already answers; `stop` ends only the process recorded there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rayline.config import SMALL_HOST_POOL, Settings

__all__ = ["ManagerStartError", "ensure_running", "is_answering", "pid_file", "stop"]


class ManagerStartError(RuntimeError):
    """The background Cluster Manager did not come up."""


def pid_file(settings: Settings) -> Path:
    """Where the background manager's pid is kept."""
    return settings.home / "cluster-manager.pid"


def log_file(settings: Settings) -> Path:
    """Where the background manager writes its log."""
    return settings.home / "logs" / "cluster-manager.log"


def is_answering(settings: Settings, timeout: float = 1.0) -> bool:
    """True when a Cluster Manager answers `/healthz` at the configured URL."""
    try:
        response = httpx.get(f"{settings.cluster_manager_url}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def ensure_running(settings: Settings, *, timeout: float = 90.0) -> bool:
    """Start the manager in the background unless one answers already.

    Returns:
        True when this call started it.

    Raises:
        ManagerStartError: it exited or did not answer in time; the message
            holds the end of its log.
    """
    if is_answering(settings):
        return False
    log = log_file(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rayline", "cluster-manager", "serve"],
            # The embedded default keeps a small warm pool unless the user set one.
            env={"RAYLINE_POOL": SMALL_HOST_POOL, **os.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command, like a service
        )
    pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ManagerStartError(f"Cluster Manager exited at start-up:\n{_tail(log)}")
        if is_answering(settings):
            return True
        time.sleep(0.2)
    raise ManagerStartError(f"Cluster Manager did not answer in {timeout:g}s:\n{_tail(log)}")


def stop(settings: Settings, *, timeout: float = 120.0) -> bool:
    """Stop the background manager started by `ensure_running`; False if none ran.

    The wait is long enough for its shutdown to drain its warm pool.
    """
    path = pid_file(settings)
    if not path.is_file():
        return False
    pid = int(path.read_text().strip())
    path.unlink()
    if not _is_our_manager(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_our_manager(pid):
        time.sleep(0.2)
    if _is_our_manager(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def _is_our_manager(pid: int) -> bool:
    # The pid file may be stale and the pid reused: check it is still a manager.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"cluster-manager" in cmdline and b"serve" in cmdline


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
