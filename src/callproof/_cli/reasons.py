"""`callproof reasons`: the reason catalogue — why the company calls, in English, Traditional
and Simplified Chinese, as the customer reads it on the check page."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import add_enable_disable, deployment, emit
from callproof.admin import Admin


@click.group()
def reasons() -> None:
    """The reason catalogue: why the company calls, in three languages."""


@reasons.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reasons_list(ctx: click.Context, as_json: bool) -> None:
    """Every reason code with its texts."""
    rows = [{**r.to_dict(), "enabled": r.enabled} for r in Admin(deployment(ctx)).reasons()]
    if as_json:
        emit(rows)
        return
    table = Table("code", "en", "zh-Hant", "zh-Hans", "enabled")
    for r in rows:
        table.add_row(r["code"], r["text"]["en"], r["text"]["zh-Hant"], r["text"]["zh-Hans"],
                      "yes" if r["enabled"] else "no")
    Console().print(table)


@reasons.command("add")
@click.argument("code")
@click.argument("text")
@click.option("--zh-Hant", "zh_hant", metavar="T",
              help="The text in Traditional Chinese (Taiwan). Default: TEXT, with a warning.")
@click.option("--zh-Hans", "zh_hans", metavar="T",
              help="The text in Simplified Chinese (mainland). Default: TEXT, with a warning.")
@click.option("--json", "as_json", is_flag=True, help="Print the new reason as JSON.")
@click.pass_context
def reasons_add(ctx: click.Context, code: str, text: str, zh_hant: str | None,
                zh_hans: str | None, as_json: bool) -> None:
    """Add reason CODE with its English TEXT (and its Chinese texts)."""
    texts = {"en": text, "zh-Hant": zh_hant or text, "zh-Hans": zh_hans or text}
    reason = Admin(deployment(ctx)).add_reason(code, texts)
    for lang, given in (("zh-Hant", zh_hant), ("zh-Hans", zh_hans)):
        if not given:
            click.echo(f"warning: no {lang} text: customers reading {lang} see the English "
                       f"text (add it with --{lang})", err=True)
    if as_json:
        emit({**reason.to_dict(), "enabled": reason.enabled})
    else:
        click.echo(f"added reason {reason.code}")


add_enable_disable(
    reasons, "code", "reason",
    lambda ctx, code, enabled: Admin(deployment(ctx)).set_reason_enabled(code, enabled),
    disable_help="Withdraw reason CODE from new calls (calls already made keep it).",
    enable_help="Offer reason CODE for new calls again.",
    disable_note="new calls cannot use it")
