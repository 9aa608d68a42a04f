"""What every `callproof` command module shares: the exit codes, the data dir and the
deployment taken from the click context, JSON and table output.

Light on purpose: the root group imports this module, so the data dir's config, the store and
SQLAlchemy are imported only inside :func:`data_dir` and :func:`deployment`, when a command
asks for them::

    @click.command()
    @click.pass_context
    def jwks(ctx: click.Context) -> None:
        emit(Admin(deployment(ctx)).jwks())
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.table import Table

    from callproof.config import DataDir
    from callproof.deployment import Deployment

EXIT_FAILED = 1  # a check or verification said no, or the input was refused
EXIT_ERROR = 2  # usage errors (click's own) and configuration problems


def data_dir(ctx: click.Context) -> DataDir:
    """The data dir of ``--data-dir`` (env CALLPROOF_DATA_DIR), set by the root group."""
    from callproof.config import DataDir

    return DataDir(ctx.obj["data_dir"])


def deployment(ctx: click.Context) -> Deployment:
    """The deployment of the data dir, open until the command ends.

    Raises a :class:`~callproof.errors.CallproofError` (config, keys, database) that the root
    group prints as one line.
    """
    from callproof.deployment import Deployment

    dep = Deployment.open(data_dir(ctx))
    ctx.call_on_close(dep.store.close)
    return dep


def emit(data: Any) -> None:
    """Print ``data`` as indented JSON, non-ASCII text as it is (the ``--json`` output)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def print_tables(*tables: Table) -> None:
    """Print rich tables whose cells wrap rather than cut an id, a number or a time short."""
    from rich.console import Console

    for table in tables:
        for column in table.columns:
            column.overflow = "fold"
    Console().print(*tables)


def add_enable_disable(group: click.Group, argument: str, what: str,
                       switch: Callable[[click.Context, str, bool], None], *,
                       disable_help: str, enable_help: str, disable_note: str = "") -> None:
    """Add ``disable ARGUMENT`` and ``enable ARGUMENT`` to ``group``: each calls
    ``switch(ctx, value, enabled)`` and says ``disabled WHAT value`` (or ``enabled …``), or with
    ``--json`` prints ``{ARGUMENT: value, "enabled": …}``.

    ``disable_note`` ends the disable line after a colon, for a consequence the operator should
    read there (``disabled reason x: new calls cannot use it``); JSON output never carries it."""
    for enabled, doc in ((False, disable_help), (True, enable_help)):
        _add_switch(group, argument, what, switch, enabled, doc,
                    "" if enabled else disable_note)


def _add_switch(group: click.Group, argument: str, what: str,
                switch: Callable[[click.Context, str, bool], None], enabled: bool,
                doc: str, note: str) -> None:
    name = "enable" if enabled else "disable"

    @group.command(name, help=doc)
    @click.argument(argument)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def command(ctx: click.Context, /, as_json: bool, **arguments: str) -> None:
        value = arguments[argument]
        switch(ctx, value, enabled)
        if as_json:
            emit({argument: value, "enabled": enabled})
        else:
            click.echo(f"{name}d {what} {value}" + (f": {note}" if note else ""))
