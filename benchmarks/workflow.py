"""Trigger to first answered prediction: hand-written Ray vs Rayline, side by side.

In one run, alternating round by round:

(a) the hand-written Ray baseline (``benchmarks/ray_baseline.py``: ``ray start``,
    ``ray job submit`` of a script that fits the demo's forest, ``ray stop``,
    ``ray start``, ``serve run``, first answered request);
(b) Rayline embedded: the `rayline_train_and_serve` DAG through ``dag.test()`` on the
    embedded defaults, its own Cluster Manager in a fresh ``RAYLINE_HOME``;
(c) with ``--stack``: Rayline's full stack (``rayline stack up``: Airflow's scheduler
    on Postgres, S3 artifacts, Docker serving), triggered through Airflow's REST API.

Before each Rayline run it waits until the manager's pools are full (warm: the
platform has been up long enough to refill). Each run prints its per-step split,
with the gaps between steps (Airflow's own time); the end prints the medians and
the ratios (b)/(a) and (c)/(a). Targets on a 2-core machine: (b) <= 30 s warm,
(c) <= 45 s.

    uv run python benchmarks/workflow.py [--runs 1] [--stack] [--keep-home]

Every cluster it makes is deleted at the end (``rayline down`` on its home; the
stack's processes are stopped, its services kept).
"""

from __future__ import annotations

import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))  # the sibling ray_baseline module

from workflow_modes import GAPS, Baseline, Embedded, FullStack, Mode, RunFigures

console = Console()
app = typer.Typer(add_completion=False)


@app.command()
def main(
    runs: int = typer.Option(1, min=1, max=10, help="Rounds; each runs every mode once."),
    stack: bool = typer.Option(False, help="Also run through the full stack (`rayline stack`)."),
    warm_timeout: float = typer.Option(300, help="Longest wait for the pools to fill (s)."),
    keep_home: bool = typer.Option(False, help="Keep the embedded run's RAYLINE_HOME."),
) -> None:
    """Run every mode ``runs`` times, alternating, and print the splits and ratios."""
    figures: dict[str, list[RunFigures]] = {}
    with ExitStack() as modes_stack:
        modes: list[Mode] = [Baseline(), Embedded(keep_home)] + ([FullStack()] if stack else [])
        for mode in modes:
            with console.status(f"setting up {mode.name}"):
                modes_stack.enter_context(mode)
        for index in range(1, runs + 1):
            for mode in modes:
                with console.status(f"{mode.name}: waiting for the pools to fill"):
                    waited = mode.wait_warm(warm_timeout)
                with console.status(f"round {index}/{runs}: {mode.name}, train → serve"):
                    run = mode.run()
                figures.setdefault(mode.name, []).append(run)
                _print_run(f"{mode.name}, round {index}", run, waited)
    _print_summary(figures)


def _print_run(title: str, run: RunFigures, waited: float) -> None:
    table = Table(title=f"{title}: trigger → first answered prediction {run.total:.1f} s")
    table.add_column("step")
    table.add_column("s", justify="right")
    for step, seconds in run.steps.items():
        table.add_row(step, f"{seconds:.1f}")
    console.print(table)
    if waited >= 1:
        console.print(f"  (waited {waited:.0f} s for the pools to fill before this run)")


def _print_summary(figures: dict[str, list[RunFigures]]) -> None:
    rounds = len(next(iter(figures.values())))
    table = Table(title=f"trigger → first answered prediction, median of {rounds} round(s)")
    table.add_column("mode")
    table.add_column("total s", justify="right")
    table.add_column("x baseline", justify="right")
    table.add_column("slowest steps (median s)")
    baseline = statistics.median(r.total for r in figures[Baseline.name])
    for mode, runs in figures.items():
        total = statistics.median(r.total for r in runs)
        steps = {s: statistics.median(r.steps.get(s, 0.0) for r in runs) for s in runs[0].steps}
        slowest = sorted(steps.items(), key=lambda item: -item[1])[:4]
        table.add_row(
            mode,
            f"{total:.1f}",
            f"{total / baseline:.2f}",
            ", ".join(f"{s} {v:.1f}" for s, v in slowest),
        )
    console.print(table)
    console.print(
        f"targets (2 cores, warm): embedded <= 30 s (<= 0.35x baseline), full stack <= 45 s; "
        f"'{GAPS}' is Airflow's time between one task's end and the next one's start"
    )


if __name__ == "__main__":
    app()
