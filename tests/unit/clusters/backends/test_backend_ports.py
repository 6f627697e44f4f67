"""The port allocator: lowest free block, no overlap across threads and processes."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rayline.clusters.backends.errors import PortRangeExhaustedError
from rayline.clusters.backends.ports import PortAllocator, PortBlock

# High in the range Linux keeps for explicit binds, far from other tests' ports.
START, END = 31000, 31999


def allocator(state_dir: Path, start: int = START, end: int = END) -> PortAllocator:
    return PortAllocator(state_dir, start=start, end=end, host="127.0.0.1")


def assert_disjoint(blocks: list[PortBlock]) -> None:
    ordered = sorted(blocks, key=lambda b: b.first)
    for a, b in itertools.pairwise(ordered):
        assert a.last < b.first, f"{a} overlaps {b}"


def test_blocks_are_consecutive_and_disjoint(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    a = ports.allocate("a", 10)
    b = ports.allocate("b", 20)
    assert a.count == 10 and b.count == 20
    assert_disjoint([a, b])
    assert ports.leases() == {"a": a, "b": b}


def test_release_frees_the_block_for_the_next_owner(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    first = ports.allocate("a", 10)
    ports.allocate("b", 10)
    ports.release("a")
    ports.release("a")  # releasing twice is fine
    assert ports.allocate("c", 10) == first


def test_allocating_again_replaces_the_owners_lease(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    ports.allocate("a", 10)
    block = ports.allocate("a", 30)
    assert ports.leases() == {"a": block}


def test_ports_in_use_by_others_are_skipped(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", START + 3))
        block = allocator(tmp_path).allocate("a", 10)
    assert block.first > START + 3


def test_lease_with_vanished_guard_is_reclaimed(tmp_path: Path) -> None:
    guard = tmp_path / "temp-dir"
    guard.mkdir()
    ports = allocator(tmp_path)
    stale = ports.allocate("gone", 10, guard=guard)
    guard.rmdir()
    assert ports.allocate("new", 10) == stale
    assert set(ports.leases()) == {"new"}


def test_exhausted_range_names_the_settings(tmp_path: Path) -> None:
    ports = allocator(tmp_path, start=START, end=START + 15)
    ports.allocate("a", 10)
    with pytest.raises(PortRangeExhaustedError, match="RAYLINE_LOCAL_PORT_RANGE_START"):
        ports.allocate("b", 10)


def test_reversed_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reversed"):
        allocator(tmp_path, start=2000, end=1000)


def test_concurrent_threads_never_share_a_port(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        blocks = list(pool.map(lambda i: ports.allocate(f"t{i}", 17), range(40)))
    assert_disjoint(blocks)
    assert len(ports.leases()) == 40


_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from rayline.clusters.backends.ports import PortAllocator
    ports = PortAllocator(Path(sys.argv[1]), start=int(sys.argv[2]), end=int(sys.argv[3]),
                          host="127.0.0.1")
    blocks = [ports.allocate(f"{sys.argv[4]}-{i}", 13) for i in range(10)]
    print(json.dumps([[b.first, b.count] for b in blocks]))
    """
)


def test_concurrent_processes_never_share_a_port(tmp_path: Path) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path), str(START), str(END), f"p{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    blocks = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        blocks += [PortBlock(first, count) for first, count in json.loads(out)]
    assert len(blocks) == 40
    assert_disjoint(blocks)
    assert sorted(allocator(tmp_path).leases().values(), key=lambda b: b.first) == sorted(
        blocks, key=lambda b: b.first
    )
