"""The writer that hashes a file in order while parts land out of order."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayline.storage.hashing import OffsetHashingWriter, sha256_file

DATA = os.urandom(3 * 1024 * 1024 + 123)


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    descriptor = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT, 0o600)
    yield descriptor
    os.close(descriptor)


def pieces(size: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def write_all(writer: OffsetHashingWriter, order: list[tuple[int, int]]) -> None:
    for start, end in order:
        writer.seek(start)
        writer.write(DATA[start:end])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_out_of_order_writes_hash_like_the_whole_file(fd: int, seed: int) -> None:
    order = pieces(len(DATA), 256 * 1024 + 17)
    random.Random(seed).shuffle(order)
    writer = OffsetHashingWriter(fd)
    write_all(writer, order)
    assert writer.finish() == (hashlib.sha256(DATA).hexdigest(), len(DATA))


def test_in_order_writes(fd: int, tmp_path: Path) -> None:
    writer = OffsetHashingWriter(fd)
    write_all(writer, pieces(len(DATA), 1000))
    assert writer.finish() == sha256_file(tmp_path / "out.bin")


def test_rewritten_range_is_rehashed_from_the_file(fd: int) -> None:
    writer = OffsetHashingWriter(fd)
    write_all(writer, pieces(len(DATA), 65536))
    writer.seek(100)
    writer.write(b"changed on retry")
    expected = DATA[:100] + b"changed on retry" + DATA[116:]
    assert writer.finish() == (hashlib.sha256(expected).hexdigest(), len(DATA))


def test_a_hole_is_hashed_as_it_is_on_disk(fd: int) -> None:
    writer = OffsetHashingWriter(fd)
    writer.seek(10)
    writer.write(b"tail")
    assert writer.finish() == (hashlib.sha256(b"\0" * 10 + b"tail").hexdigest(), 14)


def test_it_looks_seekable_to_boto3(fd: int) -> None:
    writer = OffsetHashingWriter(fd)
    assert writer.seekable()
    assert writer.seek(5) == 5
    assert writer.tell() == 5
    assert writer.seek(0, os.SEEK_END) == 0
    writer.close()


def test_hashing_errors_surface_in_finish(tmp_path: Path) -> None:
    descriptor = os.open(tmp_path / "w.bin", os.O_WRONLY | os.O_CREAT, 0o600)  # no reads
    try:
        writer = OffsetHashingWriter(descriptor, ahead_limit=0)
        writer.seek(5)
        writer.write(b"later")  # kept as "read back later", which fails
        writer.seek(0)
        writer.write(b"first")
        with pytest.raises(OSError):
            writer.finish()
    finally:
        os.close(descriptor)


@pytest.mark.parametrize("limit", [0, 300_000, 10**9])
def test_any_memory_limit_gives_the_same_digest(fd: int, limit: int) -> None:
    order = pieces(len(DATA), 100_000)
    random.Random(limit).shuffle(order)
    writer = OffsetHashingWriter(fd, ahead_limit=limit)
    write_all(writer, order)
    assert writer.finish() == (hashlib.sha256(DATA).hexdigest(), len(DATA))


def test_same_range_written_twice_ahead_of_the_prefix(fd: int) -> None:
    writer = OffsetHashingWriter(fd, ahead_limit=10)
    write_all(writer, [(50, 60), (50, 60), (20, 50), (0, 20), (60, len(DATA))])
    assert writer.finish() == (hashlib.sha256(DATA).hexdigest(), len(DATA))
