"""sha256 helpers shared by the backends: hash files and streams in one pass."""

from __future__ import annotations

import hashlib
import heapq
import os
import threading
from collections import deque
from pathlib import Path
from typing import IO, Protocol

__all__ = [
    "CHUNK_BYTES",
    "HashingWriter",
    "OffsetHashingWriter",
    "Writable",
    "copy_and_hash",
    "sha256_file",
]

# Large enough that hashlib and file writes release the GIL and per-call
# overhead vanishes; small enough to stay cheap in memory.
CHUNK_BYTES = 1024 * 1024
# Out-of-order bytes kept in memory for hashing instead of being read back
# from the file later: most of the parts in flight of a tuned download.
AHEAD_BUFFER_BYTES = 256 * 1024 * 1024
# Writes not yet hashed before a writer has to wait for the hashing.
MAX_PENDING_WRITES = 64


class Writable(Protocol):
    """Anything with a binary ``write`` method: files, sockets, hashing writers."""

    def write(self, data: bytes, /) -> int:
        """Write ``data`` and return the number of bytes written."""
        ...


class HashingWriter:
    """Forward sequential writes to a sink while computing their sha256 and size."""

    def __init__(self, sink: Writable) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        """Write ``data`` to the sink and add it to the running hash."""
        self._sink.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        """Return the sha256 of everything written so far, in hex."""
        return self._hash.hexdigest()


class OffsetHashingWriter:
    """A seekable writer into a file that hashes it in file order *while* it is written.

    boto3's parallel download writes parts at their offsets, out of order.
    Each write goes straight to the file (``pwrite``) and is hashed, by a
    helper thread or by the writer itself, as soon as it extends the contiguous
    prefix; bytes further ahead are kept (up to ``ahead_limit`` bytes; beyond
    that only noted and later read back from the page cache) until the prefix
    reaches them. So hashing overlaps the download on another core and the
    digest is ready right after the last byte lands, with no second pass.
    """

    def __init__(self, fd: int, *, ahead_limit: int = AHEAD_BUFFER_BYTES) -> None:
        """Write into the open, readable and writable file descriptor ``fd``."""
        self._fd = fd
        self._pos = 0
        self._end = 0
        self._hasher = _PrefixHasher(fd, ahead_limit)
        self._pending: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()  # held by whichever thread feeds the hasher
        self._wake = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._hash_loop, name="rayline-sha256", daemon=True)
        self._thread.start()

    def seekable(self) -> bool:
        """Always true: boto3 then writes each part at its own offset."""
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the write position (``SEEK_SET``, ``SEEK_CUR`` or ``SEEK_END``)."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """Return the write position."""
        return self._pos

    def write(self, data: bytes, /) -> int:
        """Write ``data`` at the current position and hand it to the hashing."""
        start = self._pos
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._pos)
            view = view[written:]
            self._pos += written
        self._end = max(self._end, self._pos)
        self._pending.append((start, bytes(data)))
        # sha256 is one sequential chain: let the writing thread advance it too
        # when the hashing thread is not, so the chain moves whenever either gets
        # CPU. A writer far ahead of the hash waits for it (bounded memory).
        self._feed(limit=1, block=len(self._pending) > MAX_PENDING_WRITES)
        self._wake.set()
        return len(data)

    def _feed(self, *, limit: int | None, block: bool) -> None:
        if not self._lock.acquire(blocking=block):
            return
        try:
            while self._pending and self._error is None and limit != 0:
                self._hasher.add(*self._pending.popleft())
                limit = None if limit is None else limit - 1
        except BaseException as err:  # re-raised by finish() in the caller's thread
            self._error = err
        finally:
            if self._error is not None:
                self._pending.clear()
            self._lock.release()

    def _hash_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self._feed(limit=None, block=True)
            if self._stopping:
                return

    def close(self) -> None:
        """Stop the hashing thread (also done by :meth:`finish`)."""
        if self._thread.is_alive():
            self._stopping = True
            self._wake.set()
            self._thread.join()

    def finish(self) -> tuple[str, int]:
        """Wait for the hashing to catch up; return ``(sha256 hex, size)`` of the file."""
        self.close()
        self._feed(limit=None, block=True)
        if self._error is not None:
            raise self._error
        return self._hasher.hexdigest(self._end), self._end


class _PrefixHasher:
    """Hash a file in order from writes that arrive in any order (one thread only)."""

    def __init__(self, fd: int, ahead_limit: int) -> None:
        self._fd = fd
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) are in the hash
        self._ahead_limit = ahead_limit
        self._ahead_bytes = 0
        # Heap of (start, end, seq, bytes or None) written past the hashed prefix;
        # seq keeps entries comparable when the same range is written twice.
        self._ahead: list[tuple[int, int, int, bytes | None]] = []
        self._seq = 0
        self._rewritten = False

    def add(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if start < self._hashed:
            # A retried range rewrites bytes already hashed; re-hash at the end.
            self._rewritten = True
        elif start == self._hashed:
            self._hash.update(data)
            self._hashed = end
            self._catch_up()
        else:
            keep = self._ahead_bytes + len(data) <= self._ahead_limit
            self._ahead_bytes += len(data) if keep else 0
            self._seq += 1
            heapq.heappush(self._ahead, (start, end, self._seq, data if keep else None))

    def _catch_up(self) -> None:
        while self._ahead and self._ahead[0][0] <= self._hashed:
            start, end, _, kept = heapq.heappop(self._ahead)
            if kept is not None:
                self._ahead_bytes -= len(kept)
            if end <= self._hashed:
                continue
            if kept is not None and start == self._hashed:
                self._hash.update(kept)
                self._hashed = end
            else:
                self._hash_from_file(self._hashed, end)

    def _hash_from_file(self, start: int, end: int) -> None:
        while start < end:
            chunk = os.pread(self._fd, min(CHUNK_BYTES, end - start), start)
            if not chunk:
                raise OSError(f"file ended at byte {start} while hashing up to {end}")
            self._hash.update(chunk)
            start += len(chunk)
        self._hashed = end

    def hexdigest(self, size: int) -> str:
        if self._rewritten:
            self._hash = hashlib.sha256()
            self._hash_from_file(0, size)
        elif self._hashed < size:  # a hole was never filled: hash what is there
            self._hash_from_file(self._hashed, size)
        return self._hash.hexdigest()


def copy_and_hash(src: IO[bytes], sink: Writable) -> tuple[str, int]:
    """Copy ``src`` into ``sink`` in chunks; return ``(sha256 hex, size)``."""
    writer = HashingWriter(sink)
    while chunk := src.read(CHUNK_BYTES):
        writer.write(chunk)
    return writer.hexdigest(), writer.size


def sha256_file(path: Path) -> tuple[str, int]:
    """Return ``(sha256 hex, size)`` of a local file, read in one pass."""
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return digest.hexdigest(), fh.tell()
