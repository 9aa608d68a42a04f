"""`callproof issue`, `verify`, `check-code` and `tickets`: a call ticket from the shell, from
its issue through what the dialer reports to the operator's read-only look at a call code.

``verify --jwks FILE --issuer ID`` checks a ticket against that file alone: it opens no data
dir. The issuer is required with ``--jwks`` (a JWKS names no issuer, so without it any issuer's
ticket signed by a listed key would pass); a JWKS document whose top-level ``issuer`` member is
a string supplies it instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from callproof._cli._common import EXIT_FAILED, deployment, emit
from callproof.checkflow import CheckFlow
from callproof.errors import InputError, TicketError
from callproof.issuer import Issuer
from callproof.protocol.clock import iso
from callproof.protocol.keys import KeySet
from callproof.protocol.ticket import CLOCK_SKEW, verify_ticket


@click.command()
@click.option("--agent-id", required=True, help="An agent from the registry.")
@click.option("--reason", required=True, help="A reason code from the catalogue.")
@click.option("--customer", "customer_ref", help="The company's customer ref (kept only hashed).")
@click.option("--phone", help="The number dialled, E.164 (kept only hashed, plus the last 4).")
@click.option("--ttl", type=int, help="Lifetime in seconds (default 900, at most 1800).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def issue(ctx: click.Context, agent_id: str, reason: str, customer_ref: str | None,
          phone: str | None, ttl: int | None, as_json: bool) -> None:
    """Issue a call ticket for a call placed now."""
    call = Issuer(deployment(ctx)).issue(agent_id=agent_id, reason=reason,
                                         customer_ref=customer_ref, phone=phone, ttl=ttl)
    if as_json:
        emit(call.to_json())
    else:
        click.echo(f"call code {call.code_display}  (ticket {call.ticket_id}, "
                   f"until {iso(call.expires_at)})")


@click.command()
@click.argument("ticket")
@click.option("--jwks", "jwks_file", type=click.File("r"),
              help="Verify against this JWKS file instead of the data dir's keys (needs "
                   "--issuer).")
@click.option("--issuer", "expected_issuer", metavar="ID",
              help="The issuer the ticket must be from (its iss); required with --jwks unless "
                   "the JWKS document names its issuer. Default: the data dir's issuer.")
@click.pass_context
def verify(ctx: click.Context, ticket: str, jwks_file: Any,
           expected_issuer: str | None) -> None:
    """Verify TICKET ('-' reads stdin); print its claims, or the outcome and exit 1."""
    if jwks_file is not None:
        try:
            document = json.load(jwks_file)
        except ValueError as e:
            raise click.BadParameter(f"the JWKS file is not JSON: {e}",
                                     param_hint="--jwks") from e
        issuer = _jwks_issuer(document, expected_issuer)
        try:
            keyset = KeySet.from_jwks(document)
        except InputError as e:
            raise click.BadParameter(str(e), param_hint="--jwks") from e
        skew = CLOCK_SKEW
    else:
        dep = deployment(ctx)
        with dep.store.read() as conn:
            keyset = dep.keyset(conn)
        issuer, skew = expected_issuer or dep.issuer_id, dep.config.limits.skew
    token = sys.stdin.read().strip() if ticket == "-" else ticket
    try:
        claims = verify_ticket(token, keyset, issuer=issuer, skew=skew)
    except TicketError as e:
        click.echo(json.dumps({"outcome": e.outcome, "message": str(e)}))
        sys.exit(EXIT_FAILED)
    emit(claims.to_claims())


def _jwks_issuer(document: Any, given: str | None) -> str:
    """The issuer a ticket checked against a JWKS file must name: ``--issuer``, or the
    document's own top-level ``issuer``; both, they must agree."""
    named = document.get("issuer") if isinstance(document, dict) else None
    if named is not None and (not isinstance(named, str) or not named):
        raise click.BadParameter("the JWKS document's `issuer` is not a non-empty string",
                                 param_hint="--jwks")
    if given is not None and named is not None and given != named:
        raise click.BadParameter(f"the JWKS document is {named!r}'s, not {given!r}'s",
                                 param_hint="--issuer")
    issuer = given or named
    if not issuer:
        raise click.UsageError("--jwks needs --issuer ID: a JWKS does not say whose tickets it "
                               "verifies, and without the issuer another issuer's ticket "
                               "signed by a listed key would pass")
    return issuer


@click.command("check-code")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check_code(ctx: click.Context, code: str, as_json: bool) -> None:
    """The operator's read-only look at CODE: claims nothing, counts nothing."""
    report = CheckFlow(deployment(ctx)).inspect_code(code).to_json()
    if as_json:
        emit(report)
    else:
        details = f" — {report['agent']['name']}, {report['reason']}, state {report['state']}" \
            if "agent" in report else ""
        click.echo(f"{report['outcome']}{details}")


@click.group()
def tickets() -> None:
    """What the dialer reports about a call, and the agent's view of it."""


def _ticket_action(name: str, doc: str) -> None:
    @tickets.command(name, help=doc)
    @click.argument("ticket_id")
    @click.pass_context
    def action(ctx: click.Context, ticket_id: str) -> None:
        issuer = Issuer(deployment(ctx))
        method = {"connected": issuer.connected, "close": issuer.close,
                  "revoke": issuer.revoke_ticket}[name]
        click.echo(f"{ticket_id}: {method(ticket_id)}")


_ticket_action("connected", "The customer picked up TICKET_ID's call.")
_ticket_action("close", "TICKET_ID's call was hung up: its code confirms nothing any more.")
_ticket_action("revoke", "Withdraw TICKET_ID.")


@tickets.command("status")
@click.argument("ticket_id")
@click.option("--lang", type=click.Choice(["en", "zh-Hant", "zh-Hans"]), default="en")
@click.pass_context
def tickets_status(ctx: click.Context, ticket_id: str, lang: str) -> None:
    """The agent's view: state, the check word once it is due, alerts."""
    emit(Issuer(deployment(ctx)).status(ticket_id).to_json(lang))
