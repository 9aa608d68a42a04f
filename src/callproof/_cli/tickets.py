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
from callproof.agent_calls import status_json
from callproof.checkflow import CheckFlow
from callproof.errors import InputError, TicketError
from callproof.issuer import Issuer
from callproof.protocol.clock import iso
from callproof.protocol.keys import KeySet
from callproof.protocol.languages import LANGUAGES, NATIVE_NAMES
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
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (verify always prints JSON).")
@click.pass_context
def verify(ctx: click.Context, ticket: str, jwks_file: Any,
           expected_issuer: str | None, as_json: bool) -> None:
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
    """The operator's read-only look at CODE: claims nothing, counts nothing.

    A CODE that is not a call code (not nine digits, or a typo the check digit catches) is bad
    input: it says so on stderr and exits 1 (with --json, the report is still printed). Any
    answer about a real code — valid, claimed, expired, not found, … — exits 0."""
    report = CheckFlow(deployment(ctx)).inspect_code(code).to_json()
    if as_json:
        emit(report)
    else:
        details = f" — {report['agent']['name']}, {report['reason']}, state {report['state']}" \
            if "agent" in report else ""
        click.echo(f"{report['outcome']}{details}")
    if report["outcome"] in _BAD_CODE:
        click.echo(f"callproof: {_BAD_CODE[report['outcome']]}", err=True)
        sys.exit(EXIT_FAILED)


_BAD_CODE = {
    "malformed": "that is not a call code: a call code is 9 digits, e.g. 123 456 789",
    "typo": "that call code has a typo (its last digit does not match): check each digit",
}


@click.group()
def tickets() -> None:
    """What the dialer reports about a call, and the agent's view of it."""


def _ticket_action(name: str, doc: str) -> None:
    @tickets.command(name, help=doc)
    @click.argument("ticket_id")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def action(ctx: click.Context, ticket_id: str, as_json: bool) -> None:
        issuer = Issuer(deployment(ctx))
        method = {"connected": issuer.connected, "close": issuer.close,
                  "revoke": issuer.revoke_ticket}[name]
        state = method(ticket_id)
        if as_json:
            emit({"ticket_id": ticket_id, "state": state})
        else:
            click.echo(f"{ticket_id}: {state}")


_ticket_action("connected", "The customer picked up TICKET_ID's call.")
_ticket_action("close", "TICKET_ID's call was hung up: its code confirms nothing any more.")
_ticket_action("revoke", "Withdraw TICKET_ID.")


@tickets.command("status")
@click.argument("ticket_id")
@click.option("--lang", type=click.Choice(LANGUAGES), default="en",
              help="The check word also in this language (yours); it is shown first as the "
                   "customer sees it, once they have typed the code.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (check_word.customer_lang and customer_text: the customer's "
                   "page language and the word in it).")
@click.pass_context
def tickets_status(ctx: click.Context, ticket_id: str, lang: str, as_json: bool) -> None:
    """The agent's view: state, the check word once it is due, alerts."""
    dep = deployment(ctx)
    status = status_json(dep, Issuer(dep).status(ticket_id), lang)
    customer_lang = status.get("check_word", {}).get("customer_lang")
    if as_json:
        emit(status)
        return
    click.echo(f"call {status['ticket_id']}: {status['state']} (until {status['expires_at']})")
    word = status.get("check_word")
    if word and customer_lang is not None:
        also = f"; {word['text']}" if word["text"] != word["customer_text"] else ""
        click.echo(f"check word: {word['emoji']} {word['customer_text']}  (the customer's page "
                   f"is in {NATIVE_NAMES[customer_lang]}{also})")
    elif word:
        click.echo(f"check word: {word['emoji']} {word['text']}  (ask the customer to tap it)")
    else:
        click.echo("check word: not yet — it shows once the customer has typed the code")
    for alert in status["alerts"]:
        click.echo(f"alert: {alert.get('text') or alert.get('type')}")
