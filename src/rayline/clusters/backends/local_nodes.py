"""The local backend's node processes: start each `ray start` launcher, stop and reap them.

Every node runs in a session (process group) of its own; stopping a cluster
signals those groups, then sweeps every process marked with the cluster's temp
dir, so a job's watcher or worker started meanwhile cannot outlive it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Literal

from rayline.clusters.backends.errors import TeardownError
from rayline.clusters.backends.local_handle import LocalNode
from rayline.clusters.backends.processes import (
    ProcessRecord,
    describe,
    find_marked,
    is_running,
    kill_processes,
    mentions,
    read_cmdline,
    record_of,
    wait_gone,
)
from rayline.clusters.backends.ray_nodes import TEMP_DIR_ENV, NodePorts

__all__ = ["NodeProcesses", "remove_tree"]

_KILL_WAIT = 5.0
_SWEEP_DEADLINE = 30.0
_REAP_WAIT = 2.0
_LOG_TAIL_LINES = 12


class NodeProcesses:
    """Our own `ray start` children: kept to reap them and to read their exit codes."""

    def __init__(self, *, stop_grace_seconds: float) -> None:
        self._grace = stop_grace_seconds
        self._children: dict[tuple[int, int], subprocess.Popen[bytes]] = {}
        self._children_lock = threading.Lock()

    def spawn(
        self,
        name: str,
        role: Literal["head", "worker"],
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        ports: NodePorts,
    ) -> LocalNode:
        """Start one node's launcher in a session of its own, logging to ``log_dir``."""
        log_file = log_dir / f"{name}.log"
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=env[TEMP_DIR_ENV],  # drivers inherit it: relative paths stay inside
                start_new_session=True,  # own process group, immune to our signals
            )
        # A process that died at once has no start time: -1 never matches a live one.
        record = record_of(proc.pid) or ProcessRecord(pid=proc.pid, pgid=proc.pid, start_ticks=-1)
        with self._children_lock:
            self._children[(record.pid, record.start_ticks)] = proc
        return LocalNode(name=name, role=role, process=record, log_file=str(log_file), ports=ports)

    def owns(self, record: ProcessRecord, temp_dir: Path) -> bool:
        """Alive, same start time and group, and started for this temp dir."""
        return record_of(record.pid) == record and mentions(read_cmdline(record.pid), temp_dir)

    def stop(self, temp_dir: Path, roots: list[ProcessRecord]) -> None:
        """SIGTERM our process groups, wait, SIGKILL whatever of the cluster is left."""
        grace = self._grace
        ours = [r for r in roots if self.owns(r, temp_dir)]
        for root in ours:
            _signal_group(root.pgid, signal.SIGTERM)
        left = wait_gone(ours + find_marked(temp_dir, TEMP_DIR_ENV), grace)
        for root in ours:
            if is_running(root):
                _signal_group(root.pgid, signal.SIGKILL)
        kill_processes(left, signal.SIGKILL)
        # Sweep until the deadline: a job's watcher or a worker may have been mid-spawn,
        # and on a loaded host a killed process can take seconds to be scheduled to die.
        deadline = time.monotonic() + _SWEEP_DEADLINE
        while True:
            stragglers = find_marked(temp_dir, TEMP_DIR_ENV)
            if not stragglers or time.monotonic() >= deadline:
                break
            kill_processes(stragglers, signal.SIGKILL)
            wait_gone(stragglers, min(_KILL_WAIT, max(0.0, deadline - time.monotonic())))
        self._reap()
        survivors = find_marked(temp_dir, TEMP_DIR_ENV)
        if survivors:
            raise TeardownError(
                f"processes of the Ray cluster in {temp_dir} survived SIGKILL for "
                f"{_SWEEP_DEADLINE:.0f} s ({'; '.join(describe(s) for s in survivors)}); "
                "terminate again, or reboot the host"
            )

    def _reap(self) -> None:
        with self._children_lock:
            for proc in self._children.values():
                proc.poll()

    def exit_story(self, node: LocalNode) -> str:
        """Why a node is gone, with the end of its log."""
        with self._children_lock:
            proc = self._children.get((node.process.pid, node.process.start_ticks))
        code = None
        if proc is not None:
            # A killed multi-threaded process shows as a zombie before it can be reaped.
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=_REAP_WAIT)
        how = f"exited with code {code}" if code is not None else "is gone"
        tail = _tail(Path(node.log_file), _LOG_TAIL_LINES)
        story = f"{node.name} `ray start` (pid {node.process.pid}) {how}"
        return f"{story}; last lines of {node.log_file}:\n{tail}" if tail else story

    def forget(self, nodes: list[LocalNode]) -> None:
        """Drop the records of a torn-down cluster's nodes."""
        with self._children_lock:
            for node in nodes:
                self._children.pop((node.process.pid, node.process.start_ticks), None)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def remove_tree(path: Path) -> None:
    """Remove a cluster's temp dir; a missing one is fine.

    Raises:
        TeardownError: it could not be removed.
    """
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise TeardownError(
            f"could not remove Ray temp dir {path}: {exc}; remove it by hand"
        ) from exc


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
