"""`python -m rayline.jobs.train` refuses bad specs before it touches Ray."""

from __future__ import annotations

import json

import pytest

from rayline.jobs.output import read_output
from rayline.jobs.results import TrainResult
from rayline.jobs.train import EXIT_BAD_INPUT, main

VALID = {
    "spec_version": 1,
    "name": "m",
    "dataset": "sklearn:iris",
    "target": "target",
    "task": "classification",
    "framework": "xgboost",
}


@pytest.mark.parametrize(
    ("spec", "word"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({**VALID, "framework": "lightgbm"}), "'lightgbm' is not allowed"),
        (json.dumps({**VALID, "name": "../x"}), "name"),
        (json.dumps({**VALID, "dataset": "ftp://x/y.csv"}), "dataset"),
    ],
)
def test_bad_spec_fails_fast(capsys: pytest.CaptureFixture[str], spec: str, word: str) -> None:
    assert main(["--spec", spec]) == EXIT_BAD_INPUT
    error = read_output(capsys.readouterr().out, TrainResult).error
    assert error is not None and error.error == "InvalidSpecError"
    assert word in error.message


def test_missing_spec_argument_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--run-name", "x"]) == EXIT_BAD_INPUT
    error = read_output(capsys.readouterr().out, TrainResult).error
    assert error is not None and "--spec" in error.message
