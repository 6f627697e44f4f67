"""Attack on the services' state by another local user, against the real services:
read the Postgres password from ``ps`` while ``deploy/services.sh up`` runs.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.integration.conftest import required_env

REPO = Path(__file__).resolve().parents[3]


def _command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue
    return lines


@pytest.mark.skipif(os.geteuid() != 0, reason="deploy/services.sh up needs root")
def test_the_postgres_password_never_appears_on_a_command_line() -> None:
    password = make_url(required_env("RAYLINE_PG_URL")).password
    assert password
    seen: list[bytes] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(line for line in _command_lines() if password.encode() in line)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # Idempotent on running services: it still sets the role's password again.
        result = subprocess.run(
            [str(REPO / "deploy" / "services.sh"), "up", "postgres"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        done.set()
        watcher.join()
    assert result.returncode == 0, result.stderr
    assert seen == [], "the password was on a command line"
