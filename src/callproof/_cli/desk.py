"""`callproof desk`: the fraud desk from the shell — its users, the alert webhook, and what the
desk's pages show (alerts, reports, the police facts as CSV or printable text).

Nothing printed identifies a customer: alerts name tickets and agents, reports the number that
called and the scripts, never a report's free text. The webhook secret is printed once, when it
is made. Errors reach the root group in ``_cli``, which prints them as one line and exits 1.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from callproof._cli._common import add_enable_disable, deployment, emit, print_tables
from callproof._cli.password import new_password
from callproof.desk_users import DeskUsers
from callproof.errors import ConfigError, NotFound
from callproof.fraud import MAX_POLICE_DAYS, WINDOWS, FraudDesk, PoliceFacts
from callproof.protocol.clock import iso
from callproof.webhook import AlertWebhook


@click.group("desk")
def desk() -> None:
    """The fraud desk: its users, the alert webhook, alerts, reports, police facts."""


# --- users ----------------------------------------------------------------------------------


add_enable_disable(
    desk, "user_id", "desk user",
    lambda ctx, user_id, enabled: DeskUsers(deployment(ctx)).set_enabled(user_id, enabled),
    disable_help="Stop USER_ID from signing in to the desk.",
    enable_help="Let USER_ID sign in to the desk again.")


@desk.command("add")
@click.argument("user_id")
@click.option("--name", required=True, help="Who this is (shown on the desk).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def add(ctx: click.Context, user_id: str, name: str, password_stdin: bool) -> None:
    """Add USER_ID to the fraud desk (password: hidden prompt, twice, or --password-stdin)."""
    users = DeskUsers(deployment(ctx))
    user = users.add(user_id, name, new_password(password_stdin))
    click.echo(f"added desk user {user.user_id} ({user.name})")


@desk.command("password")
@click.argument("user_id")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
def password(ctx: click.Context, user_id: str, password_stdin: bool) -> None:
    """Set a new password for USER_ID."""
    users = DeskUsers(deployment(ctx))
    if users.get(user_id) is None:  # say so before asking for a password twice
        raise NotFound(f"no desk user {user_id!r}")
    users.set_password(user_id, new_password(password_stdin))
    click.echo(f"password set for desk user {user_id}")


@desk.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_users(ctx: click.Context, as_json: bool) -> None:
    """Every desk user, enabled or not."""
    users = DeskUsers(deployment(ctx)).list()
    if as_json:
        emit([{"user_id": u.user_id, "name": u.name, "enabled": u.enabled} for u in users])
        return
    table = Table("user id", "name", "enabled")
    for u in users:
        table.add_row(u.user_id, u.name, "yes" if u.enabled else "no")
    print_tables(table)


# --- the webhook ----------------------------------------------------------------------------


@desk.command("webhook-secret")
@click.option("--rotate", is_flag=True, help="Replace the secret (the receiver needs the new one).")
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON: {"secret": …} the one time it is made, else {"secret": null}.')
@click.pass_context
def webhook_secret(ctx: click.Context, rotate: bool, as_json: bool) -> None:
    """Make the webhook's signing secret and print it once, for the receiver's configuration."""
    hook = AlertWebhook(deployment(ctx))
    secret = hook.create_secret(rotate=rotate)
    if as_json:
        emit({"secret": secret, "webhook_url_set": bool(hook.dep.config.alerts.webhook_url)})
        return
    if secret is None:
        click.echo("a webhook secret exists already; it is not shown again. "
                   "`callproof desk webhook-secret --rotate` replaces it.")
        return
    click.echo(secret)
    click.secho("This is the only time the secret is shown: give it to the receiver, which "
                "checks every alert's webhook-signature with it (Standard Webhooks).",
                fg="yellow", err=True)
    if not hook.dep.config.alerts.webhook_url:
        click.secho("No [alerts] webhook_url in config.toml yet: nothing is pushed until one "
                    "is set.", fg="yellow", err=True)


@desk.command("push")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def push(ctx: click.Context, as_json: bool) -> None:
    """Push due alerts to the webhook once (for cron; the server does it every few seconds)."""
    hook = AlertWebhook(deployment(ctx))
    if not hook.dep.config.alerts.webhook_url:
        raise ConfigError("no webhook: set [alerts] webhook_url in config.toml")
    if hook.secret() is None:
        raise ConfigError("no webhook secret: run `callproof desk webhook-secret` and give it "
                          "to the receiver")
    result = hook.push_due()
    status = hook.status()
    if as_json:
        emit({"host": status.url_host, "delivered": result.delivered, "failed": result.failed,
              "pending": result.pending, "gave_up": status.gave_up})
        return
    click.echo(f"webhook {status.url_host}: delivered {result.delivered}, failed "
               f"{result.failed}, pending {result.pending}, gave up {status.gave_up}")


# --- what the desk shows --------------------------------------------------------------------


@desk.command("alerts")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def alerts(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The newest alerts: a "No", a wrong word, a second device, a tripped budget, a reveal
    without a call, a capped reveal, a tampered ticket."""
    dep = deployment(ctx)
    found = FraudDesk(dep).alerts(limit=limit)
    if as_json:
        emit([a.to_json() for a in found])  # times stay ISO 8601 in UTC, for scripts
        return
    zone = dep.config.company.zone
    table = Table("#", f"time ({zone.key})", "alert", "ticket", "agent", "reason", "details")
    for a in found:
        table.add_row(str(a.idx), _local(a.at, zone), a.kind, a.ticket_id or "",
                      a.agent_id or "", a.reason or "",
                      ", ".join(f"{k}={v}" for k, v in a.details.items()))
    print_tables(table)


@desk.command("reports")
@click.option("--days", required=True, type=click.Choice([str(d) for d in WINDOWS]),
              help="The last 1, 7 or 30 days.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reports(ctx: click.Context, days: str, as_json: bool) -> None:
    """Scam reports of the last DAYS days, by reported number and by script."""
    dep = deployment(ctx)
    s = FraudDesk(dep).reports(days=int(days))
    if as_json:
        emit({"days": s.days, "since": iso(s.since), "until": iso(s.until), "total": s.total,
               "without_number": s.without_number,
               "by_number": [{"number": n.number, "reports": n.reports,
                              "first_at": iso(n.first_at), "last_at": iso(n.last_at),
                              "scripts": dict(n.scripts)} for n in s.by_number],
               "by_script": {x.script: x.reports for x in s.by_script}})
        return
    zone = dep.config.company.zone
    Console().print(f"{s.total} report(s) from {_local(s.since, zone)} to "
                    f"{_local(s.until, zone)} ({zone.key}), {s.without_number} without a number",
                    highlight=False)
    numbers = Table("reported number", "reports", f"first ({zone.key})", f"last ({zone.key})",
                    "scripts", title="By reported number")
    for n in s.by_number:
        numbers.add_row(n.number, str(n.reports), _local(n.first_at, zone),
                        _local(n.last_at, zone),
                        ", ".join(f"{k} {v}" for k, v in n.scripts.items()))
    scripts = Table("script", "reports", title="By script")
    for x in s.by_script:
        scripts.add_row(x.script, str(x.reports))
    print_tables(numbers, scripts)


def _local(at: datetime, zone: ZoneInfo) -> str:
    """A time as the desk's words show it: in the company's time zone (``[company]
    time_zone``, the web desk's zone), which the column or the line names; --json keeps UTC."""
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


@desk.command("police")
@click.option("--days", required=True, type=click.IntRange(1, MAX_POLICE_DAYS),
              help="The last N days.")
@click.option("--format", "fmt", type=click.Choice(["csv", "text", "json"]), default="csv",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as --format json).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of stdout.")
@click.pass_context
def police(ctx: click.Context, days: int, fmt: str, out: Path | None, as_json: bool) -> None:
    """The facts a police report needs: every scam report of the last N days (time, the number
    that called, the scripts), counts by number and script, alerts, failed lookups."""
    fraud = FraudDesk(deployment(ctx))
    if as_json or fmt == "json":
        text = json.dumps(police_json(fraud.police_facts(days=days)), ensure_ascii=False,
                          indent=2) + "\n"
    elif fmt == "csv":
        text = fraud.police_csv(days=days)
    else:
        text = police_text(fraud.police_facts(days=days))
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror}") from e
    click.echo(f"wrote {out}", err=True)


def police_json(facts: PoliceFacts) -> dict[str, object]:
    """The police facts as JSON (times in UTC, RFC 3339); no free text, nothing of reporters."""
    s = facts.summary
    return {"company": facts.company, "issuer": facts.issuer, "days": facts.days,
            "since": iso(facts.since), "until": iso(facts.until),
            "generated_at": iso(facts.generated_at), "total": s.total,
            "without_number": s.without_number, "failed_lookups": facts.failed_lookups,
            "alerts_by_kind": dict(facts.alerts_by_kind),
            "by_number": [{"number": n.number, "reports": n.reports, "first_at": iso(n.first_at),
                           "last_at": iso(n.last_at), "scripts": dict(n.scripts)}
                          for n in s.by_number],
            "by_script": {x.script: x.reports for x in s.by_script},
            "reports": [{"at": iso(r.at), "caller_number": r.caller_number,
                         "scripts": list(r.scripts)} for r in facts.reports]}


def police_text(facts: PoliceFacts) -> str:
    """The police facts as plain text, to print or attach."""
    s = facts.summary
    lines = [
        f"Scam reports to {facts.company} ({facts.issuer})",
        f"Period: {iso(facts.since)} to {iso(facts.until)} (UTC), {facts.days} day(s)",
        f"Generated: {iso(facts.generated_at)}",
        "",
        f"Reports filed: {s.total} ({s.without_number} without the caller's number)",
        f"Failed code lookups on the check page: {facts.failed_lookups}",
        "Alerts: " + ", ".join(f"{k} {v}" for k, v in facts.alerts_by_kind.items()),
        "",
        "By reported number (the number that called the customer):",
    ]
    lines += [f"  {n.number}: {n.reports} report(s), {iso(n.first_at)} to {iso(n.last_at)}; "
              + ", ".join(f"{k} {v}" for k, v in n.scripts.items()) for n in s.by_number] \
        or ["  (none)"]
    lines += ["", "By script (what the caller asked for):"]
    lines += [f"  {x.script}: {x.reports}" for x in s.by_script]
    lines += ["", "Every report (UTC time, number that called, scripts):"]
    lines += [f"  {iso(r.at)}  {r.caller_number or '(no number)'}  {', '.join(r.scripts)}"
              for r in facts.reports] or ["  (none)"]
    lines += ["", "Reports hold no name, address or number of the customer who filed them."]
    return "\n".join(lines) + "\n"
