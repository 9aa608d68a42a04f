"""`callproof customers`: the link from the company's customer refs to ticket handles.

Forgetting a customer deletes that link and every proof the customer enrolled; their tickets
stay, but can no longer be linked to them.
"""

from __future__ import annotations

import sys

import click

from callproof._cli._common import EXIT_FAILED, deployment, emit
from callproof.admin import Admin


@click.group()
def customers() -> None:
    """The link from customer refs to ticket handles."""


@customers.command("forget")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def customers_forget(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Delete the link from REF to its handle (and everything sealed for it)."""
    forgotten = Admin(deployment(ctx)).forget_customer(ref)
    if as_json:
        emit({"forgotten": forgotten})
    if forgotten:
        if not as_json:
            click.echo("forgotten: the customer's tickets can no longer be linked to them")
    else:
        click.echo("no such customer: nothing to forget", err=True)
        sys.exit(EXIT_FAILED)
