"""Unit tests of the stack's background processes: own session, pid file, stop all of it."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rayline.stack.processes import BackgroundProcess, session_members

# A parent that forks a child into its own process group, then both sleep.
_FORKING = (
    "import os, subprocess, sys, time\n"
    "child = 'import os, time; os.setpgid(0, 0); time.sleep(60)'\n"
    "subprocess.Popen([sys.executable, '-c', child])\n"
    "time.sleep(60)\n"
)


def _wait_for(predicate: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_start_is_idempotent_and_stop_ends_the_whole_session(tmp_path: Path) -> None:
    process = BackgroundProcess("sleeper", tmp_path / "run", tmp_path / "logs")

    pid = process.start([sys.executable, "-c", _FORKING], os.environ, cwd=tmp_path)
    try:
        assert (
            process.start([sys.executable, "-c", "raise SystemExit"], os.environ, cwd=tmp_path)
            == pid
        )
        assert process.pid() == pid
        assert _wait_for(lambda: len(session_members(pid)) == 2)  # the child, in its own group
    finally:
        stopped = process.stop(timeout=5)

    assert stopped
    assert session_members(pid) == []
    assert process.pid() is None
    assert not process.pid_file.exists()
    assert process.stop() is False  # nothing of ours runs any more


def test_a_stale_pid_file_is_not_taken_for_ours(tmp_path: Path) -> None:
    process = BackgroundProcess("stale", tmp_path / "run", tmp_path / "logs")
    process.run_dir.mkdir(parents=True)
    # This test's own pid, but with another start time: a reused pid.
    process.pid_file.write_text(json.dumps({"pid": os.getpid(), "start_time": 1}))

    assert process.pid() is None
    assert process.exited()
    assert process.stop() is False  # and it is not signalled
    assert not process.pid_file.exists()


def test_a_process_dying_at_start_up_is_seen_with_its_log(tmp_path: Path) -> None:
    process = BackgroundProcess("dies", tmp_path / "run", tmp_path / "logs")

    process.start(
        [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], os.environ, cwd=tmp_path
    )

    assert _wait_for(process.exited)
    assert "boom" in process.tail()
