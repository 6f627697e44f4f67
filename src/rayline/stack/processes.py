"""Background processes of the stack: each in its own session, with a pid file and a log.

A pid file holds the pid and the process's start time (from ``/proc``), so a
pid reused by another process after a reboot or a crash is never taken for
ours. Stopping signals the whole session (the process and whatever it forked,
e.g. Airflow's task runners), waits, then kills what is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rayline.stack.errors import StackError

__all__ = ["BackgroundProcess", "answers", "session_members", "wait_until_ready"]


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # field 3: state; a zombie has ended, only its exit status is left
        return None
    return int(fields[19])  # field 22 of stat(5)


def session_members(sid: int) -> list[int]:
    """Every live process whose session id is ``sid`` (the session of a process we started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6: session; 3: state
            members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class BackgroundProcess:
    """One long-running process of the stack, known by name.

    Args:
        name: the component's name, e.g. ``airflow-scheduler``.
        run_dir: where its pid file goes (``NAME.pid``).
        log_dir: where its log goes (``NAME.log``, appended to).
    """

    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        """``run_dir/NAME.pid``: JSON with the pid and its start time."""
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """``log_dir/NAME.log``."""
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our live process, None when none runs (a stale pid file is ignored)."""
        try:
            recorded = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(recorded["pid"])
        if _start_time(pid) != recorded.get("start_time"):
            return None  # ended, or the pid now belongs to someone else
        return pid

    def start(self, argv: Sequence[str], env: Mapping[str, str], *, cwd: Path) -> int:
        """Start ``argv`` detached in a new session unless it runs already; return its pid."""
        if (pid := self.pid()) is not None:
            return pid
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own session and process group; outlives the CLI
            )
        record = {"pid": process.pid, "start_time": _start_time(process.pid), "argv": argv[:4]}
        self.pid_file.write_text(json.dumps(record) + "\n")
        return process.pid

    def exited(self) -> bool:
        """True when a pid file exists but its process is gone (it died at start-up)."""
        return self.pid_file.is_file() and self.pid() is None

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop our process and everything in its session; False when none ran."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_session(pid, signal.SIGTERM)
        # Wait for the leader's own graceful exit; whatever of its session outlives it
        # (e.g. executor workers waiting for a parent that is gone) is killed then.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _start_time(pid) is not None:
            time.sleep(0.2)
        _signal_session(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and session_members(pid):
            time.sleep(0.1)
        return True

    def tail(self, lines: int = 25) -> str:
        """The end of the log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_session(sid: int, sig: signal.Signals) -> None:
    # The leader's process group first, then stragglers that made groups of their own.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, sig)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def answers(url: str) -> bool:
    """True when ``GET url`` answers 200 within 2 seconds."""
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(process: BackgroundProcess, timeout: float, ready: Callable[[], bool]) -> None:
    """Wait until ``ready()`` holds, failing early when ``process`` exits.

    Raises:
        StackError: the process exited, or ``ready()`` did not hold in ``timeout`` seconds;
            the message holds the end of its log.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process.exited():
            raise StackError(f"{process.name} exited at start-up:\n{process.tail()}")
        time.sleep(0.5)
    raise StackError(
        f"{process.name} did not answer in {timeout:g}s (log: {process.log_file}):\n"
        f"{process.tail()}"
    )
