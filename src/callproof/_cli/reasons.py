"""`callproof reasons`: the reason catalogue — why the company calls, in English, Traditional
and Simplified Chinese, as the customer reads it on the check page."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import deployment, emit
from callproof.admin import Admin


@click.group()
def reasons() -> None:
    """The reason catalogue: why the company calls, in three languages."""


@reasons.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reasons_list(ctx: click.Context, as_json: bool) -> None:
    """Every reason code with its texts."""
    rows = [r.to_dict() for r in Admin(deployment(ctx)).reasons()]
    if as_json:
        emit(rows)
        return
    table = Table("code", "en", "zh-Hant", "zh-Hans")
    for r in rows:
        table.add_row(r["code"], r["text"]["en"], r["text"]["zh-Hant"], r["text"]["zh-Hans"])
    Console().print(table)
