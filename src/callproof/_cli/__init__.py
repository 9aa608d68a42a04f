"""The `callproof` command line. Every error is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from callproof import __version__
from callproof._cli import audit as _cli_audit
from callproof._cli.apikeys import api_keys
from callproof._cli.password import new_password
from callproof.admin import Admin
from callproof.bootstrap import DEMO_AGENTS, DEMO_REASONS, init_data_dir
from callproof.checkflow import CheckFlow
from callproof.config import DataDir
from callproof.deployment import Deployment
from callproof.errors import CallproofError, TicketError
from callproof.issuer import Issuer
from callproof.protocol.clock import iso, require_aware
from callproof.protocol.keys import KeySet
from callproof.protocol.ticket import CLOCK_SKEW, verify_ticket

EXIT_FAILED = 1  # a check or verification said no, or the input was refused
EXIT_ERROR = 2  # usage errors (click's own) and configuration problems


class _Group(click.Group):
    """Turns every CallproofError into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CallproofError as e:
            click.echo(f"callproof: {e}", err=True)
            sys.exit(EXIT_FAILED)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _dd(ctx: click.Context) -> DataDir:
    return DataDir(ctx.obj["data_dir"])


def _deployment(ctx: click.Context) -> Deployment:
    dep = Deployment.open(_dd(ctx))
    ctx.call_on_close(dep.store.close)
    return dep


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="CALLPROOF_DATA_DIR", default="./callproof-data",
              show_default=True, type=click.Path(file_okay=False),
              help="Where keys, config and the SQLite database live (env CALLPROOF_DATA_DIR).")
@click.version_option(__version__, prog_name="callproof")
@click.pass_context
def cli(ctx: click.Context, data_dir: str) -> None:
    """callproof: prove to the customer you are calling that it is really you."""
    ctx.obj = {"data_dir": data_dir}


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the data dir (config, keys, database, demo agents and reasons); keep what exists."""
    report = init_data_dir(_dd(ctx).path)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if report.created:
        click.echo(f"initialised {report.data_dir}: " + ", ".join(report.created))
    else:
        click.echo(f"{report.data_dir} is already initialised; nothing changed")


@cli.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Only prepare and print; do not start the server.")
@click.pass_context
def demo(ctx: click.Context, port: int, no_serve: bool) -> None:
    """Initialise a demo data dir if missing, start the server, and print where to look."""
    import secrets

    from callproof.agent_auth import AgentPasswords

    report = init_data_dir(_dd(ctx).path)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    dep = _deployment(ctx)
    issuer = Issuer(dep)
    agent_id, name, _ = DEMO_AGENTS[0]
    password = secrets.token_urlsafe(12)  # a fresh demo password each run, never stored in clear
    AgentPasswords(dep).set(agent_id, password)
    reason = next(iter(DEMO_REASONS))
    call = issuer.issue(agent_id=agent_id, reason=reason, phone="+886912345678")
    base = f"http://127.0.0.1:{port}"
    console = Console(soft_wrap=True)  # long lines stay whole, ready to copy
    company = dep.config.company
    console.print(f"[bold]{company.name}[/bold] is calling +886 ••• ••5 678.")
    console.print(f"Agent {name}: \"{DEMO_REASONS[reason]['en']}\". The call code is:")
    console.print(f"\n    [bold green]{call.code_display}[/bold green]\n")
    console.print(f"(ticket {call.ticket_id}, valid until {iso(call.expires_at)})\n")
    console.print(f"The customer's check page:  {base}/")
    console.print(f"The agent console:          {base}/console/  "
                  f"(agent id {agent_id}, password {password})", highlight=False)
    data_dir = _dd(ctx).path
    console.print("\nOr look the code up as an operator (claims nothing):")
    console.print(f"  callproof --data-dir {data_dir} check-code '{call.code_display}'")
    if no_serve:
        return
    console.print(f"\nServing on {base} — Ctrl-C stops it.", highlight=False)
    _serve(_dd(ctx), "127.0.0.1", port, 2)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the check page, the API and the console with gunicorn."""
    _serve(_dd(ctx), host, port, workers)


def _serve(data_dir: DataDir, host: str, port: int, workers: int) -> None:
    import os

    from gunicorn.app.base import BaseApplication

    from verifier_app import create_app

    os.environ["CALLPROOF_DATA_DIR"] = str(data_dir.path)
    Deployment.open(data_dir).store.close()  # fail here, clearly, before forking workers

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", None)  # no access log: it would keep addresses
            self.cfg.set("errorlog", "-")

        def load(self) -> Any:
            return create_app()

    _App().run()


# --- keys ---------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Ticket signing keys: list, rotate, revoke, export the public JWKS."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """Every key with its status and times."""
    rows = [{"kid": k.kid, "status": k.status,
             **{f: iso(v) for f in ("created_at", "retired_at", "revoked_at", "compromised_at")
                if (v := getattr(k, f)) is not None}}
            for k in Admin(_deployment(ctx)).keys()]
    if as_json:
        _emit(rows)
        return
    table = Table("kid", "status", "created", "retired", "revoked", "compromised")
    for column in table.columns:
        column.overflow = "fold"  # never cut a kid short
    for r in rows:
        table.add_row(r["kid"], r["status"], *(r.get(f, "") for f in (
            "created_at", "retired_at", "revoked_at", "compromised_at")))
    Console().print(table)


@keys.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Make a new signing key; the old one verifies its tickets until they expire."""
    kid = Admin(_deployment(ctx)).rotate_key()
    click.echo(f"new active key {kid}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--compromised-at", metavar="ISO8601",
              help="When the key may have been stolen (default: now).")
@click.pass_context
def keys_revoke(ctx: click.Context, kid: str, compromised_at: str | None) -> None:
    """Revoke KID: it verifies no live ticket from now on, on every server.

    A kid may begin with "-": write `callproof keys revoke -- KID`.
    """
    at = _parse_time(compromised_at) if compromised_at else None
    Admin(_deployment(ctx)).revoke_key(kid, compromised_at=at)
    click.echo(f"revoked {kid}")


@keys.command("jwks")
@click.pass_context
def keys_jwks(ctx: click.Context) -> None:
    """Print the public JWKS: every key that still verifies."""
    _emit(Admin(_deployment(ctx)).jwks())


def _parse_time(text: str) -> datetime:
    try:
        return require_aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as e:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time with a zone") from e


# --- agents and reasons -------------------------------------------------------------------


@cli.group()
def agents() -> None:
    """The agent registry: names customers see come from here."""


@agents.command("add")
@click.argument("agent_id")
@click.argument("name")
@click.option("--department", help="The team, shown to the customer.")
@click.pass_context
def agents_add(ctx: click.Context, agent_id: str, name: str, department: str | None) -> None:
    """Register AGENT_ID with the display NAME."""
    agent = Admin(_deployment(ctx)).add_agent(agent_id, name, department=department)
    click.echo(f"added agent {agent.agent_id} ({agent.name})")


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def agents_list(ctx: click.Context, as_json: bool) -> None:
    """Every agent, enabled or not."""
    rows = [a.to_dict() for a in Admin(_deployment(ctx)).agents()]
    if as_json:
        _emit(rows)
        return
    table = Table("id", "name", "department", "enabled")
    for r in rows:
        table.add_row(r["id"], r["name"], r["department"] or "", "yes" if r["enabled"] else "no")
    Console().print(table)


@agents.command("set-password")
@click.argument("agent_id")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def agents_set_password(ctx: click.Context, agent_id: str, password_stdin: bool) -> None:
    """Set AGENT_ID's console password (hidden prompt, or --password-stdin)."""
    from callproof.agent_auth import AgentPasswords

    AgentPasswords(_deployment(ctx)).set(agent_id, new_password(password_stdin))
    click.echo(f"password set for {agent_id}")


@agents.command("disable")
@click.argument("agent_id")
@click.pass_context
def agents_disable(ctx: click.Context, agent_id: str) -> None:
    """Stop AGENT_ID from being named on new tickets."""
    Admin(_deployment(ctx)).set_agent_enabled(agent_id, False)
    click.echo(f"disabled agent {agent_id}")


@agents.command("enable")
@click.argument("agent_id")
@click.pass_context
def agents_enable(ctx: click.Context, agent_id: str) -> None:
    """Allow AGENT_ID on new tickets again."""
    Admin(_deployment(ctx)).set_agent_enabled(agent_id, True)
    click.echo(f"enabled agent {agent_id}")


@cli.group()
def reasons() -> None:
    """The reason catalogue: why the company calls, in three languages."""


@reasons.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reasons_list(ctx: click.Context, as_json: bool) -> None:
    """Every reason code with its texts."""
    rows = [r.to_dict() for r in Admin(_deployment(ctx)).reasons()]
    if as_json:
        _emit(rows)
        return
    table = Table("code", "en", "zh-Hant", "zh-Hans")
    for r in rows:
        table.add_row(r["code"], r["text"]["en"], r["text"]["zh-Hant"], r["text"]["zh-Hans"])
    Console().print(table)


# --- tickets ------------------------------------------------------------------------------


@cli.command()
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
    call = Issuer(_deployment(ctx)).issue(agent_id=agent_id, reason=reason,
                                          customer_ref=customer_ref, phone=phone, ttl=ttl)
    if as_json:
        _emit(call.to_json())
    else:
        click.echo(f"call code {call.code_display}  (ticket {call.ticket_id}, "
                   f"until {iso(call.expires_at)})")


@cli.command()
@click.argument("ticket")
@click.option("--jwks", "jwks_file", type=click.File("r"),
              help="Verify against this JWKS file instead of the data dir's keys.")
@click.pass_context
def verify(ctx: click.Context, ticket: str, jwks_file: Any) -> None:
    """Verify TICKET ('-' reads stdin); print its claims, or the outcome and exit 1."""
    token = sys.stdin.read().strip() if ticket == "-" else ticket
    if jwks_file is not None:
        try:
            keyset = KeySet.from_jwks(json.load(jwks_file))
        except ValueError as e:
            raise click.BadParameter(f"the JWKS file is not JSON: {e}") from e
        issuer, skew = None, CLOCK_SKEW
    else:
        dep = _deployment(ctx)
        with dep.store.read() as conn:
            keyset = dep.keyset(conn)
        issuer, skew = dep.issuer_id, dep.config.limits.skew
    try:
        claims = verify_ticket(token, keyset, issuer=issuer, skew=skew)
    except TicketError as e:
        click.echo(json.dumps({"outcome": e.outcome, "message": str(e)}))
        sys.exit(EXIT_FAILED)
    _emit(claims.to_claims())


@cli.command("check-code")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check_code(ctx: click.Context, code: str, as_json: bool) -> None:
    """The operator's read-only look at CODE: claims nothing, counts nothing."""
    report = CheckFlow(_deployment(ctx)).inspect_code(code).to_json()
    if as_json:
        _emit(report)
    else:
        details = f" — {report['agent']['name']}, {report['reason']}, state {report['state']}" \
            if "agent" in report else ""
        click.echo(f"{report['outcome']}{details}")


@cli.group()
def tickets() -> None:
    """What the dialer reports about a call, and the agent's view of it."""


def _ticket_action(name: str, doc: str) -> None:
    @tickets.command(name, help=doc)
    @click.argument("ticket_id")
    @click.pass_context
    def action(ctx: click.Context, ticket_id: str) -> None:
        issuer = Issuer(_deployment(ctx))
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
    _emit(Issuer(_deployment(ctx)).status(ticket_id).to_json(lang))


@cli.group()
def customers() -> None:
    """The link from customer refs to ticket handles."""


@customers.command("forget")
@click.argument("ref")
@click.pass_context
def customers_forget(ctx: click.Context, ref: str) -> None:
    """Delete the link from REF to its handle (and everything sealed for it)."""
    if Admin(_deployment(ctx)).forget_customer(ref):
        click.echo("forgotten: the customer's tickets can no longer be linked to them")
    else:
        click.echo("no such customer: nothing to forget", err=True)
        sys.exit(EXIT_FAILED)


cli.add_command(_cli_audit.audit)
cli.add_command(api_keys)
cli.add_command(__import__("callproof._cli.witness", fromlist=["witness"]).witness)
cli.add_command(__import__("callproof._cli.notice", fromlist=["notice"]).notice)
cli.add_command(__import__("callproof._cli.desk", fromlist=["desk"]).desk)
for _command in __import__("callproof._cli.enroll", fromlist=["COMMANDS"]).COMMANDS:
    cli.add_command(_command)  # enroll, reveal, call-status, coverage


def main() -> None:
    cli(prog_name="callproof")
