"""`callproof keys`: the ticket signing keys — list, rotate, revoke, export the public JWKS.

A new key signs from now on while the old ones verify their tickets until those expire; a
revoked key verifies no live ticket any more, on every server. Keys live in the shared database
(the private half encrypted under CALLPROOF_KEY_PASSPHRASE, ADR 0011): a rotation or revocation
on any host takes effect on every instance at its next ticket or check.
"""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from callproof._cli._common import deployment, emit, print_tables
from callproof.admin import Admin
from callproof.config import passphrase
from callproof.protocol.clock import iso, require_aware

_TIMES = ("created_at", "retired_at", "revoked_at", "compromised_at")


@click.group()
def keys() -> None:
    """Ticket signing keys: list, rotate, revoke, export the public JWKS."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """Every key with its status and times."""
    rows = [{"kid": k.kid, "status": k.status,
             **{f: iso(v) for f in _TIMES if (v := getattr(k, f)) is not None}}
            for k in Admin(deployment(ctx)).keys()]
    if as_json:
        emit(rows)
        return
    table = Table("kid", "status", "created", "retired", "revoked", "compromised")
    for r in rows:
        table.add_row(r["kid"], r["status"], *(r.get(f, "") for f in _TIMES))
    print_tables(table)  # never cut a kid short


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_rotate(ctx: click.Context, as_json: bool) -> None:
    """Make a new signing key; the old one verifies its tickets until they expire.

    The key is kept in the database, encrypted under CALLPROOF_KEY_PASSPHRASE: every instance of
    the deployment signs with it from its next ticket, with no file to copy.
    """
    if passphrase() is None:
        click.secho("warning: CALLPROOF_KEY_PASSPHRASE is not set: the new key is stored "
                    "UNENCRYPTED in the database. Fine for a demo, never for real calls.",
                    fg="yellow", err=True)
    kid = Admin(deployment(ctx)).rotate_key()
    if as_json:
        emit({"kid": kid, "status": "active"})
    else:
        click.echo(f"new active key {kid}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--compromised-at", metavar="ISO8601",
              help="When the key may have been stolen (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_revoke(ctx: click.Context, kid: str, compromised_at: str | None,
                as_json: bool) -> None:
    """Revoke KID: it verifies no live ticket from now on, on every server.

    A kid may begin with "-": write `callproof keys revoke -- KID`.
    """
    at = _parse_time(compromised_at) if compromised_at else None
    Admin(deployment(ctx)).revoke_key(kid, compromised_at=at)
    if as_json:
        emit({"kid": kid, "status": "revoked"})
    else:
        click.echo(f"revoked {kid}")


@keys.command("jwks")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (the JWKS is JSON either way).")
@click.pass_context
def keys_jwks(ctx: click.Context, as_json: bool) -> None:
    """Print the public JWKS: every key that still verifies."""
    emit(Admin(deployment(ctx)).jwks())


def _parse_time(text: str) -> datetime:
    try:
        return require_aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as e:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time with a zone") from e
