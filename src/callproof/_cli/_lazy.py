"""A click group whose subcommands are imported only when they run.

The pattern of click's docs, "Lazily Loading Subcommands", plus the short help of each command
in the table, so that ``callproof --help`` lists every command without importing one::

    cli = LazyGroup(lazy_commands={
        "keys": LazyCommand("callproof._cli.keys:keys",
                            "Ticket signing keys: list, rotate, revoke, export the public JWKS."),
    })

A command's module, and what it imports (SQLAlchemy, Flask, Pillow, the witness server), loads
when that command, or its ``--help``, runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from gettext import gettext as _
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a subcommand lives (``"module:attribute"``) and the first paragraph of its help,
    which must be the same as the command's own: ``--help`` shows it before the import."""

    target: str
    help: str


class LazyGroup(click.Group):
    """A group that imports a subcommand's module the first time the subcommand is asked for."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.list_commands(ctx):
            for name in self.lazy_commands:  # click's "Did you mean" looks at loaded ones only
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like :meth:`click.Group.format_commands`, with a stand-in made from the table for each
        command not imported yet."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy_commands and name not in self.commands:
                commands.append((name, click.Command(name, help=self.lazy_commands[name].help)))
            elif (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _cmd in commands)
            with formatter.section(_("Commands")):  # click's own heading, translated alike
                formatter.write_dl([(name, cmd.get_short_help_str(limit))
                                    for name, cmd in commands])

    def _load(self, name: str) -> click.Command:
        module, attribute = self.lazy_commands[name].target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[name].target} is not a click command")
        return command
