"""Find, check and stop local processes through ``/proc`` without touching strangers.

A pid alone proves nothing after a restart (pids are reused), so a process is
identified by its pid *and* its start time in clock ticks since boot, and a
process is only treated as a cluster's when it carries that cluster's marker:
the Ray temp dir in its command line, or the marker variable in its environment
(which Ray's process titles, unlike the command line, do not overwrite).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ProcessRecord",
    "describe",
    "find_marked",
    "is_running",
    "kill_processes",
    "mentions",
    "read_cmdline",
    "record_of",
    "wait_gone",
]

_PROC = Path("/proc")


class ProcessRecord(BaseModel):
    """A process as recorded when we started it; stored in cluster handles."""

    model_config = ConfigDict(frozen=True)

    pid: int
    pgid: int
    start_ticks: int


@dataclass(frozen=True)
class _Stat:
    state: str
    pgid: int
    start_ticks: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ..." and comm may hold spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return _Stat(state=fields[0], pgid=int(fields[2]), start_ticks=int(fields[19]))


def record_of(pid: int) -> ProcessRecord | None:
    """Identify a live process, or None when it is gone."""
    stat = _stat(pid)
    if stat is None or stat.state in ("Z", "X"):
        return None
    return ProcessRecord(pid=pid, pgid=stat.pgid, start_ticks=stat.start_ticks)


def is_running(record: ProcessRecord) -> bool:
    """True when this very process (same start time) still runs and is not a zombie."""
    stat = _stat(record.pid)
    return (
        stat is not None
        and stat.state not in ("Z", "X")
        and (stat.start_ticks == record.start_ticks)
    )


def describe(record: ProcessRecord) -> str:
    """``pid <n> state <S>: <command line>``, for error messages about stuck processes."""
    stat = _stat(record.pid)
    state = stat.state if stat is not None else "gone"
    command = " ".join(read_cmdline(record.pid))[:200]
    return f"pid {record.pid} state {state}: {command}"


def read_cmdline(pid: int) -> list[str]:
    """The process's arguments ([] when gone or unreadable)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def mentions(args: Iterable[str], path: Path) -> bool:
    """True when an argument is ``path``, lies under it, or ends with ``=path``."""
    text = str(path).rstrip("/")
    return any(a == text or a.endswith("=" + text) or (text + "/") in a for a in args)


def _has_env(pid: int, entry: bytes) -> bool:
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return entry in raw.split(b"\0")


def find_marked(path: Path, env_name: str) -> list[ProcessRecord]:
    """Every live process that names ``path`` in its arguments or has ``env_name=path``."""
    entry = f"{env_name}={path}".encode()
    found = []
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        if _has_env(pid, entry) or mentions(read_cmdline(pid), path):
            record = record_of(pid)
            if record is not None:
                found.append(record)
    return found


def kill_processes(records: Iterable[ProcessRecord], sig: signal.Signals) -> None:
    """Signal each process that is still the one recorded (a reused pid is left alone)."""
    for record in records:
        if is_running(record):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, sig)


def wait_gone(records: Iterable[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    """Wait until none of the processes runs; return those still running at the deadline."""
    pending = list(records)
    deadline = time.monotonic() + timeout
    while True:
        pending = [r for r in pending if is_running(r)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.1)
