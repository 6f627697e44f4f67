"""The services' state dir: private by default, foreign or shared ones refused.

Runs ``deploy/services.sh`` itself (the one implementation of the default); the
commands used here start nothing.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from rayline.stack.config import SERVICES_SCRIPT, StackConfig, read_services_env

NOBODY = 65534


def _script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "RAYLINE_SERVICES_DIR"}
    return subprocess.run(
        [str(SERVICES_SCRIPT), *args], env={**base, **env}, capture_output=True, text=True
    )


def test_the_default_is_in_the_users_state_home_not_var_tmp(tmp_path: Path) -> None:
    default = tmp_path / "rayline" / "services"
    default.mkdir(parents=True, mode=0o700)

    out = _script("env-file", XDG_STATE_HOME=str(tmp_path))

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(default / "services.env")


def test_the_stack_resolves_the_same_default_as_the_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "rayline" / "services").mkdir(parents=True, mode=0o700)
    monkeypatch.delenv("RAYLINE_SERVICES_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

    assert StackConfig.from_env().services_dir == tmp_path / "rayline" / "services"


def test_a_world_writable_state_dir_is_refused_saying_why(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    out = _script("env-file", RAYLINE_SERVICES_DIR=str(shared))

    assert out.returncode != 0
    assert "writable by group or others (mode 777)" in out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="starting services and chown need root")
def test_up_refuses_a_dir_of_another_user_before_writing_anything(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o755)
    os.chown(planted, NOBODY, NOBODY)

    out = _script("up", "postgres", RAYLINE_SERVICES_DIR=str(planted))

    assert out.returncode != 0
    assert "belongs to nobody" in out.stderr and "another user could read" in out.stderr
    assert list(planted.iterdir()) == []


def test_services_env_in_a_shared_dir_is_not_read(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "services.env").write_text("export DOCKER_HOST=unix:///attacker.sock\n")
    shared.chmod(0o777)

    with pytest.raises(PermissionError, match="writable by group or others"):
        read_services_env(shared)


def test_the_postgres_password_is_not_on_psqls_command_line() -> None:
    text = SERVICES_SCRIPT.read_text()
    psql_lines = [line for line in text.splitlines() if "psql" in line and "PG_PASSWORD" in line]

    assert psql_lines == []
    assert "-v pw=" not in text


def test_state_dir_mode_is_700_when_made(tmp_path: Path) -> None:
    state = tmp_path / "made"
    # `env-file` only names the file; `private_dir` is what `up` calls first.
    out = subprocess.run(
        ["bash", "-c", f'source "{SERVICES_SCRIPT.parent}/state_dir.sh" && private_dir "{state}"'],
        capture_output=True,
        text=True,
    )

    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_daemons_started_by_the_scripts_do_not_keep_the_callers_lock(tmp_path: Path) -> None:
    lock, pid_file = tmp_path / "heavy.lock", tmp_path / "daemon.pid"
    lock.touch()
    helpers = SERVICES_SCRIPT.parent / "state_dir.sh"
    # As `flock LOCK deploy/services.sh up` starts a daemon with setsid.
    starts = (
        f'source "{helpers}" && close_inherited_fds && '
        f'{{ setsid sleep 30 >/dev/null 2>&1 </dev/null & echo $! >"{pid_file}"; }}'
    )
    subprocess.run(["flock", str(lock), "bash", "-c", starts], check=True, timeout=30)
    try:
        free = subprocess.run(["flock", "-n", str(lock), "true"], check=False)
        assert free.returncode == 0, "the daemon still holds the caller's lock"
    finally:
        os.kill(int(pid_file.read_text()), 9)
