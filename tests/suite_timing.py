"""A pytest plugin that prints each suite's wall time at the end of a run.

A suite is `unit` or one folder of `tests/integration/` (`integration/serving`, ...).
Each test's time runs from the start of its setup to the end of its teardown, so
module- and session-scoped fixtures count in the suite that first or last used them.
Loaded for every run through `-p tests.suite_timing` in `pyproject.toml`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

__all__ = ["suite_of"]


@dataclass
class _Suite:
    seconds: float = 0.0
    tests: int = 0
    failed: int = 0


_failed: set[str] = set()
_suites: dict[str, _Suite] = defaultdict(_Suite)
_started: dict[str, float] = {}


def suite_of(nodeid: str) -> str:
    """The suite a test belongs to, from its node id (``tests/integration/x/...``)."""
    parts = nodeid.split("::", 1)[0].split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] == "integration":
        return f"integration/{parts[2]}" if len(parts) > 3 else "integration"
    if len(parts) > 1 and parts[0] == "tests":
        return parts[1]
    return parts[0]


def pytest_runtest_logstart(nodeid: str) -> None:
    _started[nodeid] = time.monotonic()


def pytest_runtest_logfinish(nodeid: str) -> None:
    started = _started.pop(nodeid, None)
    if started is not None:
        suite = _suites[suite_of(nodeid)]
        suite.seconds += time.monotonic() - started
        suite.tests += 1


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and report.nodeid not in _failed:
        _failed.add(report.nodeid)  # a failed call and a failed teardown are one test
        _suites[suite_of(report.nodeid)].failed += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _suites:
        return
    write = terminalreporter.write_line
    terminalreporter.section("wall time per suite")
    write(f"{'suite':<28} {'tests':>6} {'failed':>6} {'seconds':>9}")
    for name, suite in sorted(_suites.items(), key=lambda item: -item[1].seconds):
        write(f"{name:<28} {suite.tests:>6} {suite.failed:>6} {suite.seconds:>9.1f}")
    total = sum(s.seconds for s in _suites.values())
    tests = sum(s.tests for s in _suites.values())
    failed = sum(s.failed for s in _suites.values())
    write(f"{'all':<28} {tests:>6} {failed:>6} {total:>9.1f}")
