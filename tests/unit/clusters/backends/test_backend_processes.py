"""Process identity and marker search through /proc, on throwaway child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayline.clusters.backends.processes import (
    ProcessRecord,
    describe,
    find_marked,
    is_running,
    kill_processes,
    mentions,
    record_of,
    wait_gone,
)

MARK = "RAYLINE_TEST_MARK"
SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def spawn(
    started: list[subprocess.Popen[bytes]], args: list[str], env: dict[str, str] | None = None
) -> ProcessRecord:
    child = subprocess.Popen(args, env={**os.environ, **(env or {})}, start_new_session=True)
    started.append(child)
    record = record_of(child.pid)
    assert record is not None
    return record


def test_record_of_identifies_this_process() -> None:
    record = record_of(os.getpid())
    assert record is not None
    assert record.pgid == os.getpgid(0)
    assert record.start_ticks > 0
    assert is_running(record)


def test_a_reused_pid_is_not_the_recorded_process() -> None:
    record = record_of(os.getpid())
    assert record is not None
    assert not is_running(record.model_copy(update={"start_ticks": record.start_ticks + 1}))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--temp-dir=/tmp/rl/abc"], True),
        (["/tmp/rl/abc"], True),
        (["--log_dir=/tmp/rl/abc/session_1/logs"], True),
        (["--temp-dir=/tmp/rl/abcd"], False),
        (["/tmp/rl/ab"], False),
        ([], False),
    ],
)
def test_mentions_matches_whole_path_components(args: list[str], expected: bool) -> None:
    assert mentions(args, Path("/tmp/rl/abc")) is expected


def test_find_marked_by_environment_or_arguments(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    marked_env = spawn(children, SLEEP, env={MARK: str(tmp_path)})
    marked_arg = spawn(children, [*SLEEP, f"--temp-dir={tmp_path}"])
    spawn(children, SLEEP, env={MARK: f"{tmp_path}-other"})
    found = find_marked(tmp_path, MARK)
    assert sorted(r.pid for r in found) == sorted([marked_env.pid, marked_arg.pid])


def test_kill_processes_spares_a_process_whose_start_time_differs(
    children: list[subprocess.Popen[bytes]],
) -> None:
    victim = spawn(children, SLEEP)
    bystander = spawn(children, SLEEP)
    impostor = bystander.model_copy(update={"start_ticks": bystander.start_ticks - 1})
    kill_processes([victim, impostor], signal.SIGKILL)
    assert wait_gone([victim], timeout=10) == []  # a zombie counts as gone
    assert is_running(bystander)


def test_describe_names_pid_state_and_command(children: list[subprocess.Popen[bytes]]) -> None:
    record = spawn(children, [*SLEEP, "--marker-arg"])
    text = describe(record)
    assert text.startswith(f"pid {record.pid} state ")
    assert "--marker-arg" in text
    children[0].kill()
    children[0].wait(timeout=10)
    assert describe(record) == f"pid {record.pid} state gone: "
