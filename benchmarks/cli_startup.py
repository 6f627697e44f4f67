"""CLI start-up: `rayline --help` and the light commands, beside `python -c pass`.

Runs, alternating and ``--runs`` times each: the floor (``python -c pass``), then
every command with this checkout's ``rayline`` and, with ``--baseline-python``,
the same command with another checkout's (e.g. a worktree at the commit before a
change, with its own ``make venv``). Prints median, min and max wall seconds,
the ratio of each median to the floor's, and ours to the baseline's.

The commands run against a real, empty embedded installation in a temporary
``RAYLINE_HOME``: a migrated SQLite metadata store and a Cluster Manager started
in the background on a free loopback port (stopped at the end).

Run::

    uv run python benchmarks/cli_startup.py --runs 5 \\
        --baseline-python /work/wt/cli-base/.venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()

#: The commands measured (arguments after `rayline`).
COMMANDS: list[list[str]] = [
    ["--help"],
    ["clusters", "list"],
    ["models", "list"],
    ["workflow", "list"],
]
#: The targets: median wall seconds.
TARGETS = {"--help": 1.0, "clusters list": 2.0, "models list": 2.0, "workflow list": 2.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument(
        "--baseline-python",
        type=Path,
        default=None,
        help="python of another checkout's venv; its `rayline` runs beside ours",
    )
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rayline_script(python: Path) -> Path:
    """The `rayline` console script next to ``python`` (what a user runs)."""
    script = python.parent / "rayline"
    if not script.is_file():
        raise SystemExit(f"{script} does not exist: run `make venv` in that checkout")
    return script


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one run of ``argv`` takes; a failing run stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


@contextmanager
def embedded_installation() -> Iterator[dict[str, str]]:
    """A temporary RAYLINE_HOME with a migrated store and a running Cluster Manager."""
    with tempfile.TemporaryDirectory(prefix="rayline-cli-bench-") as home:
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RAYLINE_", "AIRFLOW"))
        }
        env |= {
            "RAYLINE_HOME": home,
            "RAYLINE_API_PORT": str(port),
            "RAYLINE_CLUSTER_MANAGER_URL": f"http://127.0.0.1:{port}",
            "COLUMNS": "120",
        }
        os.environ.clear()
        os.environ.update(env)
        from rayline.clusters import daemon
        from rayline.config import Settings
        from rayline.metadata.migrate import upgrade

        settings = Settings()
        upgrade(settings.database_url)
        daemon.ensure_running(settings)
        try:
            yield env
        finally:
            daemon.stop(settings)


def measure(
    runs: int, ours: Path, baseline: Path | None, env: dict[str, str]
) -> dict[tuple[str, str], list[float]]:
    """Wall seconds per (command, side), alternating floor, baseline and ours."""
    sides = [("baseline", baseline), ("ours", ours)] if baseline else [("ours", ours)]
    seconds: dict[tuple[str, str], list[float]] = {}
    python = [sys.executable, "-c", "pass"]
    for argv in COMMANDS:  # one untimed run each: file caches warm for both sides
        for _, script in sides:
            assert script is not None
            wall([str(script), *argv], env)
    for run in range(runs):
        seconds.setdefault(("python -c pass", "floor"), []).append(wall(python, env))
        for argv in COMMANDS:
            for side, script in sides:
                assert script is not None
                took = wall([str(script), *argv], env)
                seconds.setdefault((" ".join(argv), side), []).append(took)
        console.print(f"run {run + 1}/{runs} done")
    return seconds


def report(seconds: dict[tuple[str, str], list[float]]) -> None:
    floor = statistics.median(seconds[("python -c pass", "floor")])
    table = Table(title="rayline start-up, wall seconds")
    for column in ("command", "side", "median", "min", "max", "x floor", "ours / base", "target"):
        table.add_column(column, justify="left" if column in ("command", "side") else "right")
    for (command, side), values in seconds.items():
        median = statistics.median(values)
        base = seconds.get((command, "baseline"))
        versus = f"{median / statistics.median(base):.2f}" if base and side == "ours" else ""
        target = TARGETS.get(command)
        verdict = ""
        if target is not None and side == "ours":
            verdict = f"<= {target:g} {'ok' if median <= target else 'MISSED'}"
        table.add_row(
            command,
            side,
            f"{median:.3f}",
            f"{min(values):.3f}",
            f"{max(values):.3f}",
            f"{median / floor:.1f}",
            versus,
            verdict,
        )
    console.print(table)


def main() -> None:
    args = parse_args()
    ours = rayline_script(Path(sys.executable))
    baseline = rayline_script(args.baseline_python) if args.baseline_python else None
    with embedded_installation() as env:
        seconds = measure(args.runs, ours, baseline, env)
    report(seconds)


if __name__ == "__main__":
    main()
