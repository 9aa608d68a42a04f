"""`callproof api-keys`: the bearer keys call-center software uses on the issuer API.

A key with the ``issue`` scope mints genuine tickets: it is printed once, stored only hashed,
and revoking it stops every running server from its next request on. Errors reach the root
group in ``_cli``, which prints them as one line and exits 1.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import deployment, emit
from callproof.apikeys import SCOPES, ApiKeys
from callproof.protocol.clock import iso


@click.group("api-keys")
def api_keys() -> None:
    """Issuer API keys: create (shown once), list, revoke."""


@api_keys.command("create")
@click.argument("name")
@click.option("--scope", "scope", metavar="SCOPES",
              help=f"Comma-separated, from {','.join(SCOPES)} (default: issue,status).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(ctx: click.Context, name: str, scope: str | None, as_json: bool) -> None:
    """Make a key called NAME and print it: this is the only time it is shown."""
    scopes = None if scope is None else {s.strip() for s in scope.split(",") if s.strip()}
    key, record = ApiKeys(deployment(ctx)).create(name, scopes=scopes)
    if as_json:
        emit({"key": key, "key_id": record.key_id, "scopes": sorted(record.scopes)})
    else:
        click.echo(f"API key {record.key_id} ({record.name}), scopes "
                   f"{','.join(sorted(record.scopes))}:\n{key}")
    click.secho("This is the only time the key is shown. Whoever holds it can act as your "
                "company: keep it like the signing key.", fg="yellow", err=True)


@api_keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """Every key with its scopes and times (never the key itself)."""
    records = ApiKeys(deployment(ctx)).list()
    if as_json:
        emit([k.to_json() for k in records])
        return
    table = Table("key id", "name", "scopes", "created", "revoked")
    for k in records:
        table.add_row(k.key_id, k.name, ",".join(sorted(k.scopes)), iso(k.created_at),
                      iso(k.revoked_at) if k.revoked_at else "")
    Console().print(table)


@api_keys.command("revoke")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke KEY_ID: every server refuses it from its next request on."""
    ApiKeys(deployment(ctx)).revoke(key_id)
    if as_json:
        emit({"key_id": key_id, "revoked": True})
    else:
        click.echo(f"revoked API key {key_id}")
