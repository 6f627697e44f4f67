"""Subcommands imported only when they run, as Airflow's ``lazy_load_command`` does.

``rayline --help`` lists every command from its name and one-line help alone;
the module behind a command (and what it imports: FastAPI, Ray, pandas...) is
imported only when that command is resolved to run or to print its own help.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # Typer vendors click; its group's methods take these types
    from typer._click import Command, Context

__all__ = ["LazyCommand", "LazyGroup"]


@dataclass(frozen=True)
class LazyCommand:
    """A subcommand named by its import path.

    Args:
        import_path: ``"module:attribute"``; the attribute is a Typer app (a command
            group) or a function (one command).
        help: the one line ``--help`` of the parent shows.
    """

    import_path: str
    help: str

    def load(self, name: str) -> Command:
        """Import the command's module and build its click command."""
        module_name, _, attribute = self.import_path.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        command: Command
        if isinstance(target, typer.Typer):
            command = typer.main.get_group(target)  # as `add_typer` would
        else:
            single = typer.Typer(add_completion=False)
            single.command(name)(target)
            command = typer.main.get_command(single)
        command.name = name
        return command

    def stub(self, name: str) -> Command:
        """A placeholder that only carries the name and help, for listings."""
        return _Stub(name, help=self.help, short_help=self.help)


class _Stub(TyperCommand):
    """A not yet imported command (see `LazyGroup.resolve_command`)."""


class LazyGroup(TyperGroup):
    """A Typer group whose `lazy_commands` are imported when one is run.

    Subclass it with ``lazy_commands`` set and pass it as ``typer.Typer(cls=...)``.
    """

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, lazy in self.lazy_commands.items():
            self.commands.setdefault(name, lazy.stub(name))

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """Import the command about to run (or show its help), then resolve as usual."""
        if args and isinstance(self.commands.get(args[0]), _Stub):
            self.commands[args[0]] = self.lazy_commands[args[0]].load(args[0])
        return super().resolve_command(ctx, args)
