"""`callproof enroll`, `reveal`, `call-status` and `coverage`: enrolled proofs from the shell.

Enrolment belongs inside the company's logged-in site; these commands are for operators,
demos and tests. Errors reach the root group in ``_cli``, which prints them as one line and
exits 1. Secrets are printed only where asked for (the otpauth URI of a new enrolment, a reveal).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from callproof._cli._common import EXIT_FAILED, deployment, emit, print_tables
from callproof.enrollment import EnrolledProofs
from callproof.proofs import KINDS, PHRASE, TOTP
from callproof.proofs import totp as otp


@click.group("enroll")
def enroll() -> None:
    """Enrol a customer's authenticator app or phrase (normally done in the logged-in site)."""


@enroll.command("totp")
@click.option("--customer", "customer_ref", required=True, help="The company's customer ref.")
@click.option("--qr", "qr_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the QR code to FILE.png or FILE.svg.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with otpauth_uri).")
@click.pass_context
def enroll_totp(ctx: click.Context, customer_ref: str, qr_file: Path | None,
                as_json: bool) -> None:
    """Start an app enrolment: print the otpauth URI and draw its QR code.

    The enrolment stays pending until `callproof enroll confirm` gets one current code.
    Any earlier app enrolment of the customer is replaced.
    """
    if qr_file is not None and qr_file.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter("the QR file must end in .png or .svg", param_hint="--qr")
    enrolment = EnrolledProofs(deployment(ctx)).enroll_totp(customer_ref=customer_ref)
    if qr_file is not None:
        enrolment.write_qr(qr_file)
    if as_json:
        emit({**enrolment.to_json(), **({"qr_file": str(qr_file)} if qr_file else {})})
        return
    click.echo(enrolment.qr_terminal())
    click.echo(enrolment.otpauth_uri)
    click.echo(f"\nScan it with an authenticator app ({otp.ALGORITHM}, {otp.DIGITS} digits, "
               f"{otp.PERIOD} s), then confirm with one code:\n"
               f"  callproof enroll confirm --customer REF CODE")
    if qr_file is not None:
        click.echo(f"QR code written to {qr_file}")


_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@enroll.command("confirm")
@click.option("--customer", "customer_ref", required=True, help="The company's customer ref.")
@click.argument("code")
@_JSON
@click.pass_context
def enroll_confirm(ctx: click.Context, customer_ref: str, code: str, as_json: bool) -> None:
    """Complete the app enrolment with CODE, the 6 digits the app shows now."""
    EnrolledProofs(deployment(ctx)).confirm_totp(code, customer_ref=customer_ref)
    if as_json:
        emit({"enrolled": "app", "confirmed": True})
        return
    click.echo("app enrolment confirmed: calls to this customer now offer an app code")


@enroll.command("phrase")
@click.option("--customer", "customer_ref", required=True, help="The company's customer ref.")
@_JSON
@click.pass_context
def enroll_phrase(ctx: click.Context, customer_ref: str, as_json: bool) -> None:
    """Set or change the customer's phrase: read from stdin, or a hidden prompt on a terminal.

    The phrase is for this company's calls only: use it nowhere else.
    """
    if sys.stdin.isatty():
        phrase = click.prompt("Phrase (used nowhere else)", hide_input=True,
                              confirmation_prompt=True)
    else:
        phrase = sys.stdin.readline().rstrip("\r\n")
    EnrolledProofs(deployment(ctx)).set_phrase(phrase, customer_ref=customer_ref)
    if as_json:
        emit({"enrolled": "phrase"})  # never the phrase itself
        return
    click.echo("phrase set: agents can reveal it during a connected call")


@enroll.command("remove")
@click.option("--customer", "customer_ref", required=True, help="The company's customer ref.")
@click.option("--totp", "totp", is_flag=True, help="Remove the app enrolment.")
@click.option("--phrase", "phrase", is_flag=True, help="Remove the phrase.")
@_JSON
@click.pass_context
def enroll_remove(ctx: click.Context, customer_ref: str, totp: bool, phrase: bool,
                  as_json: bool) -> None:
    """Delete the app enrolment and/or the phrase (both when neither flag is given)."""
    kinds = [k for k, chosen in ((TOTP, totp), (PHRASE, phrase)) if chosen] or list(KINDS)
    gone = EnrolledProofs(deployment(ctx)).remove(customer_ref=customer_ref, kinds=kinds)
    if as_json:
        emit({"removed": ["app" if k == TOTP else "phrase" for k in gone]})
    if not gone:
        click.echo("nothing enrolled to remove", err=True)
        sys.exit(EXIT_FAILED)
    if not as_json:
        click.echo("removed: " + ", ".join("app enrolment" if k == TOTP else "phrase"
                                           for k in gone))


@click.command("reveal")
@click.argument("ticket_id")
@click.option("--allow-unconnected", is_flag=True,
              help="Reveal even before the dialer reported the call connected (tests only; "
                   "raises an alert).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reveal(ctx: click.Context, ticket_id: str, allow_unconnected: bool, as_json: bool) -> None:
    """Show the customer's current app code and/or phrase for TICKET_ID's connected call."""
    proofs = EnrolledProofs(deployment(ctx))
    shown = proofs.reveal(ticket_id, allow_unconnected=allow_unconnected).to_json()
    if as_json:
        emit(shown)
        return
    if "app_code" in shown:
        click.echo(f"app code {shown['app_code']}  (for {shown['app_code_valid_for']} s more)")
    if "phrase" in shown:
        click.echo(f"phrase   {shown['phrase']}")


@click.command("call-status")
@click.option("--customer", "customer_ref", required=True, help="The company's customer ref.")
@click.option("--lang", type=click.Choice(["en", "zh-Hant", "zh-Hans"]), default="en")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (what this command always prints: it is for the company's app).")
@click.pass_context
def call_status(ctx: click.Context, customer_ref: str, lang: str, as_json: bool) -> None:
    """What the company's app shows: is the company calling this customer now?

    It prints JSON, with or without --json (which every command that prints data takes).
    """
    emit(EnrolledProofs(deployment(ctx)).call_status(customer_ref, lang=lang))


@click.command("coverage")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="The UTC day (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def coverage(ctx: click.Context, day: Any, as_json: bool) -> None:
    """Tickets per department on a day: every team that calls must issue tickets."""
    proofs = EnrolledProofs(deployment(ctx))
    report = proofs.coverage(day.date() if day is not None else proofs.dep.now().date())
    if as_json:
        emit(report)
        return
    _print_coverage(report)


def _print_coverage(report: dict[str, Any]) -> None:
    """The day's tickets per department as a table, then the teams that issued none."""
    from rich.table import Table

    table = Table("department", "tickets", "agents issuing", "agents",
                  title=f"tickets on {report['day']} (UTC)")
    for row in report["departments"]:
        table.add_row(row["department"] or "(no department)", str(row["tickets"]),
                      str(row["agents_issuing"]), str(row["agents"]))
    print_tables(table)
    silent = [d or "(no department)" for d in report["silent"]]
    click.echo("silent (no tickets): " + (", ".join(silent) if silent else "none"))
