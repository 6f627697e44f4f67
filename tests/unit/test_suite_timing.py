"""The suite-timing plugin names each test's suite from its node id."""

from __future__ import annotations

import pytest

from tests.suite_timing import suite_of


@pytest.mark.parametrize(
    ("nodeid", "suite"),
    [
        ("tests/unit/clusters/test_x.py::test_a", "unit"),
        ("tests/integration/serving/test_updates.py::test_b[1]", "integration/serving"),
        ("tests/integration/test_top.py::test_c", "integration"),
        ("benchmarks/test_d.py::test_d", "benchmarks"),
    ],
)
def test_suite_of(nodeid: str, suite: str) -> None:
    assert suite_of(nodeid) == suite
