"""The `rayline` command imports a command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperGroup
from typer.testing import CliRunner

from rayline.cli import COMMANDS, app
from rayline.cli.lazy import LazyCommand

#: What ``rayline --help`` must not pay for.
HEAVY = ("ray", "fastapi", "airflow", "pandas", "sklearn")


def imported_packages(*args: str, home: Path) -> set[str]:
    """Top-level packages a fresh ``python -m rayline ARGS`` imports (``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rayline", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "RAYLINE_HOME": str(home), "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return {name.split(".")[0] for name in modules}


def test_help_imports_no_heavy_package(tmp_path: Path) -> None:
    packages = imported_packages("--help", home=tmp_path)
    assert "typer" in packages  # the probe sees imports at all
    assert packages.isdisjoint(HEAVY), sorted(packages & set(HEAVY))
    assert "rayline" in packages


def test_a_light_command_imports_only_what_it_needs(tmp_path: Path) -> None:
    packages = imported_packages("models", "--help", home=tmp_path)
    assert packages.isdisjoint(HEAVY), sorted(packages & set(HEAVY))


def test_help_lists_every_command_with_its_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for name, lazy in COMMANDS.items():
        assert name in result.output
        assert lazy.help in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_help_is_the_commands_own(name: str) -> None:
    command = COMMANDS[name].load(name)
    own = command.short_help or (command.help or "").strip().split("\n\n")[0]
    assert " ".join(own.split()) == COMMANDS[name].help
    assert command.name == name


def test_a_group_loads_as_a_group_without_completion_options() -> None:
    command = COMMANDS["models"].load("models")
    assert isinstance(command, TyperGroup)
    assert {"list", "show"} <= set(command.commands)
    assert not any(p.name == "install_completion" for p in command.params)


def test_a_function_loads_as_one_command() -> None:
    command = COMMANDS["down"].load("down")
    assert not isinstance(command, TyperGroup)


def test_a_subcommand_runs_through_the_lazy_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rayline.config import get_settings

    monkeypatch.setenv("RAYLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "revision" in result.output


def test_an_unknown_command_is_refused_with_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["modles"])
    assert result.exit_code == 2
    assert "models" in result.output


def test_a_bad_import_path_fails_loudly() -> None:
    with pytest.raises(ModuleNotFoundError):
        LazyCommand("rayline.cli.nope:app", "x").load("nope")
