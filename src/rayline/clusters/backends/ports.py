"""Hand out blocks of TCP ports to clusters so several can share one host.

Leases live in a JSON file next to a lock file; ``fcntl.flock`` on the lock makes
allocation atomic across threads and processes of every manager that shares the
state directory. A port is only handed out if it is not leased and can be bound
right now, so ports used by unrelated programs are skipped too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rayline.clusters.backends.errors import PortRangeExhaustedError

__all__ = ["PortAllocator", "PortBlock"]


@dataclass(frozen=True)
class PortBlock:
    """Consecutive ports ``first`` .. ``first + count - 1``."""

    first: int
    count: int

    @property
    def last(self) -> int:
        """The highest port of the block."""
        return self.first + self.count - 1

    def overlaps(self, other: PortBlock) -> bool:
        """True when the two blocks share a port."""
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class _Lease:
    block: PortBlock
    # The lease is stale once this path is gone (the cluster's temp dir).
    guard: str | None

    def stale(self) -> bool:
        return self.guard is not None and not os.path.exists(self.guard)


class PortAllocator:
    """Leases blocks of ports from ``[start, end]`` to owners (cluster ids)."""

    def __init__(self, state_dir: Path, *, start: int, end: int, host: str) -> None:
        if not 0 < start <= end < 65536:
            raise ValueError(f"port range {start}-{end} is not within 1-65535 or is reversed")
        self._start = start
        self._end = end
        self._host = host
        self._leases_path = state_dir / "ports.json"
        self._lock_path = state_dir / "ports.lock"

    def allocate(self, owner: str, count: int, *, guard: Path | None = None) -> PortBlock:
        """Lease the lowest block of ``count`` free ports to ``owner``.

        An earlier lease of the same owner is replaced. Leases whose ``guard`` path
        no longer exists are reclaimed first.

        Raises:
            PortRangeExhaustedError: no such block is free.
        """
        with self._locked():
            leases = {k: v for k, v in self._read().items() if k != owner and not v.stale()}
            block = self._find_free(count, [lease.block for lease in leases.values()])
            leases[owner] = _Lease(block, None if guard is None else str(guard))
            self._write(leases)
        return block

    def release(self, owner: str) -> None:
        """Drop the owner's lease; a missing lease is fine."""
        with self._locked():
            leases = self._read()
            if leases.pop(owner, None) is not None:
                self._write(leases)

    def leases(self) -> dict[str, PortBlock]:
        """Current leases by owner (stale ones included until the next allocation)."""
        with self._locked():
            return {owner: lease.block for owner, lease in self._read().items()}

    def _find_free(self, count: int, taken: list[PortBlock]) -> PortBlock:
        candidate = self._start
        while candidate + count - 1 <= self._end:
            block = PortBlock(candidate, count)
            clash = next((t for t in taken if t.overlaps(block)), None)
            if clash is not None:
                candidate = clash.last + 1
                continue
            busy = next((p for p in range(block.first, block.last + 1) if not self._free(p)), None)
            if busy is None:
                return block
            candidate = busy + 1
        raise PortRangeExhaustedError(count, self._start, self._end)

    def _free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((self._host, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    return False
                raise
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, _Lease]:
        try:
            raw = json.loads(self._leases_path.read_text())
        except FileNotFoundError:
            return {}
        return {
            owner: _Lease(PortBlock(int(v["first"]), int(v["count"])), v.get("guard"))
            for owner, v in raw.items()
        }

    def _write(self, leases: dict[str, _Lease]) -> None:
        data = {
            owner: {"first": v.block.first, "count": v.block.count, "guard": v.guard}
            for owner, v in sorted(leases.items())
        }
        tmp = self._leases_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self._leases_path)  # readers never see half a file
